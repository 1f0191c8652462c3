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
