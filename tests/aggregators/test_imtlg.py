"""IMTL-G (Liu et al., ICLR 2021): equal projections of the update onto every task's unit gradient.

Convention (ours and torchjd's): ``d = Σ_i α_i g_i`` with ``Σ_i α_i = 1``; for two tasks ``d·u1 = d·u2`` gives
``α1 ||g1|| (1 - cos) = α2 ||g2|| (1 - cos)``, i.e. ``α = (||g2||, ||g1||) / (||g1|| + ||g2||)`` whatever the angle.
"""

import pytest
import torch
from torchjd.aggregation import IMTLG as TorchJDIMTLG

from mtbert.aggregators import IMTLG

F64 = torch.float64


def check(J: torch.Tensor, expected_weights: list[float], expected_direction: list[float], projection: float) -> None:
    agg = IMTLG()
    d = agg(J)
    torch.testing.assert_close(agg.last_stats["weights"], torch.tensor(expected_weights, dtype=F64))
    torch.testing.assert_close(d, torch.tensor(expected_direction, dtype=F64))
    torch.testing.assert_close((J @ d) / J.norm(dim=1), torch.full((J.shape[0],), projection, dtype=F64))


@pytest.mark.parametrize("seed", range(4))
def test_equal_projections_onto_unit_gradients(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    scales = torch.tensor([[1.0], [10.0], [0.1]], dtype=F64)  # very different norms
    J = torch.randn(3, 6, dtype=F64, generator=generator) * scales
    agg = IMTLG()
    d = agg(J)
    projections = (J @ d) / J.norm(dim=1)
    torch.testing.assert_close(projections, projections.mean().expand(3))
    assert projections.mean() > 0
    assert agg.last_stats["weights"].sum().item() == pytest.approx(1.0)  # Σα = 1 as in the paper


def test_two_conflicting_rows() -> None:
    # ||g1|| = 5, ||g2|| = 2, cos = -0.6: α = (2, 5)/7, d = (2/7)(3, 4, 0) + (5/7)(-2, 0, 0) = (-4, 8, 0)/7 and
    # d·u_i = ||g1|| ||g2|| / (||g1|| + ||g2||) · (1 + cos) = 10/7 · 0.4 = 4/7.
    J = torch.tensor([[3.0, 4.0, 0.0], [-2.0, 0.0, 0.0]], dtype=F64)
    check(J, [2 / 7, 5 / 7], [-4 / 7, 8 / 7, 0.0], projection=4 / 7)


def test_two_orthogonal_rows() -> None:
    # α ||g1|| = (1 - α) ||g2|| with norms 3 and 1: α = 1/4, d = (0.75, 0.75), d·u_i = 0.75.
    J = torch.tensor([[3.0, 0.0], [0.0, 1.0]], dtype=F64)
    check(J, [0.25, 0.75], [0.75, 0.75], projection=0.75)


def test_three_orthogonal_rows() -> None:
    # d·u_i = α_i ||g_i|| equal for all i: α ∝ 1/||g_i|| = (1, 1/2, 1/4), i.e. (4, 2, 1)/7, d = (4, 4, 4, 0)/7.
    J = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]], dtype=F64)
    check(J, [4 / 7, 2 / 7, 1 / 7], [4 / 7, 4 / 7, 4 / 7, 0.0], projection=4 / 7)


def test_zero_jacobian_gives_zero_weights() -> None:
    # The weights cannot be normalised (they sum to 0): documented to be all zero, not NaN.
    agg = IMTLG()
    out = agg(torch.zeros(2, 3, dtype=F64))
    assert agg.last_stats["weights"].tolist() == [0.0, 0.0]
    assert out.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("seed", range(3))
def test_matches_torchjd_imtlg(seed: int) -> None:
    J = torch.randn(3, 6, dtype=F64, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(IMTLG()(J), TorchJDIMTLG()(J))


def dependent_float32() -> torch.Tensor:
    """The issue's matrix: float32 rows with the third the sum of the first two (exact but for float32 rounding)."""
    J = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    J[2] = J[0] + J[1]
    return J


def test_float32_rows_with_a_dependent_row_give_their_float64_result() -> None:
    """Rounding of J[0] + J[1] leaves a singular value 1e-8 of the largest: noise at float32, which the old float64
    rank tolerance inverted, collapsing the output to norm 7e-7. Both precisions now give 6.5000; torchjd's
    generalisation (``G⁺`` of the gradients, not of the unit gradients) gives 7.17 on the float64 matrix."""
    J = dependent_float32()
    ours32, ours64 = IMTLG()(J), IMTLG()(J.double())
    assert ours64.norm().item() == pytest.approx(6.5000, abs=1e-4)
    torch.testing.assert_close(ours32.double(), ours64, rtol=0, atol=1e-6 * ours64.norm().item())
    assert TorchJDIMTLG()(J.double()).norm().item() == pytest.approx(7.1734, abs=1e-4)


def test_dependent_rows_keep_the_invariance_to_each_tasks_scale() -> None:
    """IMTL-G's point: scaling one task's loss changes nothing (its unit gradient is the same). With g and -g/2,
    only d = 0 has equal projections; torchjd's G⁺ generalisation returns 2.5 g (departure asserted), and changes
    with the scale of the second row."""
    g = torch.tensor([1.0, 2.0, -1.0], dtype=F64)
    for c in (0.5, 1.0, 3.0):
        J = torch.stack([g, -c * g])
        assert IMTLG()(J).norm() <= 1e-12 * g.norm()
    torch.testing.assert_close(TorchJDIMTLG()(torch.stack([g, -0.5 * g])), 2.5 * g)


def test_two_opposite_rows_give_zero_not_amplified_rounding() -> None:
    # No direction has equal projections on u and -u but 0: G⁺ sends the norms to 0, the weights cannot be
    # normalised (the rounding of the eigenvectors is not divided by itself).
    J = torch.tensor([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], dtype=F64)
    agg = IMTLG()
    assert agg(J).abs().max() == 0
    assert agg.last_stats["weights"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("scale", [1e-8, 1e-3, 1e3, 1e6, 1e8, 1e12])
def test_weights_do_not_depend_on_a_common_scale_of_the_gradients(scale: float) -> None:
    """The equal-angle weights scale as 1/||g||; Σα = 1 removes that: the two conflicting rows above give
    α = (2, 5)/7 at any scale, and d scales with J. (Their sum is not a cancellation however small it gets.)"""
    J = torch.tensor([[3.0, 4.0, 0.0], [-2.0, 0.0, 0.0]], dtype=F64) * scale
    agg = IMTLG()
    d = agg(J)
    torch.testing.assert_close(agg.last_stats["weights"], torch.tensor([2 / 7, 5 / 7], dtype=F64))
    torch.testing.assert_close(d, torch.tensor([-4 / 7, 8 / 7, 0.0], dtype=F64) * scale)
