"""MGDA (Désidéri 2012; Sener & Koltun 2018): min-norm point of the convex hull of the rows, solved exactly.

The solver is non-negative least squares on the Gramian (:func:`mtbert.aggregators._linalg.min_norm_weights`):
checked against the exact enumeration of the simplex's faces, and against Frank-Wolfe (torchjd's ``MGDAWeighting``,
Sener & Koltun's Algorithm 2), which stops far from the optimum when the row norms differ (departure asserted).
"""

import itertools

import pytest
import torch
from _aggregation_asserts import assert_min_norm_optimality
from torchjd.aggregation import MGDA as TorchJDMGDA

from mtbert.aggregators import MGDA

F64 = torch.float64
# The issue's matrix: row norms 1.4, 19.7 and 230; the optimum is (almost) the first row.
UNEQUAL = torch.tensor([[-1, -1, 0, 0], [-8, -15, -2, 10], [150, 161, -64, -76]], dtype=F64)


def exact_min_norm_weights(J: torch.Tensor) -> torch.Tensor:
    """Weights of the min-norm point of conv(rows of J), by enumerating the faces of the simplex (small T only)."""
    G = J @ J.T
    n = G.shape[0]
    best_value, best_alpha = None, None
    for size in range(1, n + 1):
        for face in itertools.combinations(range(n), size):
            idx = list(face)
            # Minimise αᵀ G_F α subject to Σα = 1 on the face (KKT system), keep it if α ≥ 0.
            A = torch.zeros(size + 1, size + 1, dtype=G.dtype)
            A[:size, :size] = G[idx][:, idx]
            A[:size, size] = 1.0
            A[size, :size] = 1.0
            b = torch.zeros(size + 1, dtype=G.dtype)
            b[size] = 1.0
            solution = torch.linalg.lstsq(A, b).solution
            alpha = torch.zeros(n, dtype=G.dtype)
            alpha[idx] = solution[:size]
            if (alpha < -1e-12).any():
                continue
            value = alpha @ G @ alpha
            if best_value is None or value < best_value:
                best_value, best_alpha = value, alpha
    assert best_alpha is not None
    return best_alpha


def check(agg: MGDA, J: torch.Tensor, expected_weights: list[float], tol: float = 1e-12) -> None:
    """Output and weights equal the hand-derived ones, and the output satisfies the optimality conditions."""
    expected = torch.tensor(expected_weights, dtype=F64)
    d = agg(J)
    torch.testing.assert_close(agg.last_stats["weights"], expected, atol=tol, rtol=0)
    torch.testing.assert_close(d, expected @ J, atol=tol, rtol=0)
    assert_min_norm_optimality(J, d, expected > 0, tol)


def test_two_rows_closed_form() -> None:
    # w1 = ((g2 - g1)·g2) / ||g1 - g2||² = (1.2 - 0.04) / 2.46 = 58/123, inside (0, 1): both rows active.
    J = torch.tensor([[1.0, 0.5, -0.3], [-0.4, 1.0, 0.2]], dtype=F64)
    check(MGDA(), J, [58 / 123, 65 / 123])


def test_two_rows_one_dominated_gives_the_smaller_row() -> None:
    # g2 lies "behind" g1 (g1·g2 = 2 ≥ ||g1||² = 1): the clamp gives w1 = 1, the min-norm point is g1 itself.
    J = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=F64)
    check(MGDA(), J, [1.0, 0.0])


def test_three_orthogonal_rows() -> None:
    # Orthogonal rows: minimising Σ w_i² ||g_i||² on the simplex gives w_i ∝ 1/||g_i||² = (1, 1/4, 1/16), so
    # w = (16, 4, 1)/21, d = (16, 8, 4, 0)/21 and g_i·d = ||d||² = 16/21 for every row.
    J = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]], dtype=F64)
    check(MGDA(), J, [16 / 21, 4 / 21, 1 / 21])


def test_three_rows_one_row_is_the_min_norm_point() -> None:
    # g1·g2 = g1·g3 = 1 = ||g1||²: g1 satisfies the optimality conditions, so d = g1 and w = (1, 0, 0).
    J = torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 0.0], [1.0, -1.0, 3.0]], dtype=F64)
    check(MGDA(), J, [1.0, 0.0, 0.0])


def test_three_rows_min_norm_point_on_an_edge() -> None:
    # conv(g1, g2) has its min-norm point (1/2, 1/2, 0) and g3·d = 1 > ||d||² = 1/2: g3 gets weight 0 (Frank-Wolfe
    # only approached such a face to 2e-3 with Sener & Koltun's constants).
    J = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=F64)
    check(MGDA(), J, [0.5, 0.5, 0.0])


@pytest.mark.parametrize("seed", range(12))
def test_random_rows_of_spread_norms_match_face_enumeration(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    n = 2 + seed % 4
    J = torch.randn(n, 6, dtype=F64, generator=generator) * torch.logspace(-2, 2, n, dtype=F64)[:, None]
    expected_weights = exact_min_norm_weights(J)
    expected = expected_weights @ J
    agg = MGDA()
    d = agg(J)
    assert (d - expected).norm() <= 1e-9 * expected.norm()
    # d is good to 1e-9 of its norm, so g_i·d to 1e-9 |g_i| |d|: relative to ||d||², 1e-9 max|g_i| / |d|.
    assert_min_norm_optimality(J, d, expected_weights > 1e-9, tol=1e-9 * J.norm(dim=1).max().item() / d.norm().item())
    weights = agg.last_stats["weights"]
    assert (weights >= 0).all() and weights.sum().item() == pytest.approx(1.0, abs=1e-15)


def test_the_issues_unequal_rows_reach_the_min_norm_point() -> None:
    """Every task gains exactly ||d||² (all three weights are positive here); Frank-Wolfe from uniform weights stops
    far from it: with Sener & Koltun's constants (1e-5, 250 iterations) one task's gain is negative, with torchjd's
    (1e-3, 100) one is 8 times ||d||² (departures asserted)."""
    d = MGDA()(UNEQUAL)
    squared = (d @ d).item()
    torch.testing.assert_close(UNEQUAL @ d, torch.full((3,), squared, dtype=F64), rtol=1e-9, atol=0)
    assert (UNEQUAL @ TorchJDMGDA(epsilon=1e-5, max_iters=250)(UNEQUAL)).min() < 0
    assert (UNEQUAL @ TorchJDMGDA()(UNEQUAL)).max() > 8 * squared


@pytest.mark.parametrize("seed", range(3))
def test_equal_to_torchjd_where_frank_wolfe_converges(seed: int) -> None:
    # Rows of similar norms with the optimum inside the simplex: Frank-Wolfe with tight constants gets there.
    J = torch.randn(3, 5, dtype=F64, generator=torch.Generator().manual_seed(seed))
    expected_weights = exact_min_norm_weights(J)
    if (expected_weights > 1e-3).all():
        torch.testing.assert_close(MGDA()(J), TorchJDMGDA(epsilon=1e-12, max_iters=100_000)(J), atol=1e-5, rtol=0)


def test_no_options() -> None:
    with pytest.raises(TypeError):
        MGDA(epsilon=1e-5)  # type: ignore[call-arg]
