"""MGDA (Désidéri 2012; Sener & Koltun 2018): min-norm point of the convex hull of the rows.

The solver is Frank-Wolfe (Sener & Koltun's Algorithm 2), exact for two tasks and only approximate beyond: with the
default stopping constants the weights are within ~1e-5 of the optimum when it lies well inside the simplex, so 1e-3 is
used there; when the optimum lies on or near a face (a weight is 0 or small) Frank-Wolfe zigzags towards it and is only
within ~2e-3 on the hand-made case below and ~5e-2 (relative, on the direction) on random ones.
"""

import itertools

import pytest
import torch
from _aggregation_asserts import assert_min_norm_optimality
from torchjd.aggregation import MGDA as TorchJDMGDA

from mtbert.aggregators import MGDA

F64 = torch.float64
DEFAULT = {}
TIGHT = {"epsilon": 1e-9, "max_iters": 2000}


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


def check(agg: MGDA, J: torch.Tensor, expected_weights: list[float], tol: float) -> None:
    """Output and weights equal the hand-derived ones, and the output satisfies the optimality conditions."""
    expected = torch.tensor(expected_weights, dtype=F64)
    d = agg(J)
    torch.testing.assert_close(agg.last_stats["weights"], expected, atol=tol, rtol=0)
    torch.testing.assert_close(d, expected @ J, atol=tol, rtol=0)
    assert_min_norm_optimality(J, d, expected > 0, tol)


def test_two_rows_closed_form() -> None:
    # w1 = ((g2 - g1)·g2) / ||g1 - g2||² = (1.2 - 0.04) / 2.46 = 58/123, inside (0, 1): both rows active.
    J = torch.tensor([[1.0, 0.5, -0.3], [-0.4, 1.0, 0.2]], dtype=F64)
    check(MGDA(), J, [58 / 123, 65 / 123], tol=1e-12)


def test_two_rows_one_dominated_gives_the_smaller_row() -> None:
    # g2 lies "behind" g1 (g1·g2 = 2 ≥ ||g1||² = 1): the clamp gives w1 = 1, the min-norm point is g1 itself.
    J = torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=F64)
    check(MGDA(), J, [1.0, 0.0], tol=1e-12)
    torch.testing.assert_close(MGDA()(J), J[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize(("options", "tol"), [(DEFAULT, 1e-3), (TIGHT, 1e-7)])
def test_three_orthogonal_rows(options: dict, tol: float) -> None:
    # Orthogonal rows: minimising Σ w_i² ||g_i||² on the simplex gives w_i ∝ 1/||g_i||² = (1, 1/4, 1/16), so
    # w = (16, 4, 1)/21, d = (16, 8, 4, 0)/21 and g_i·d = ||d||² = 16/21 for every row.
    J = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]], dtype=F64)
    check(MGDA(**options), J, [16 / 21, 4 / 21, 1 / 21], tol)
    d = MGDA(**options)(J)
    torch.testing.assert_close(d, torch.tensor([16.0, 8.0, 4.0, 0.0], dtype=F64) / 21, atol=tol, rtol=0)
    assert (d @ d).item() == pytest.approx(16 / 21, abs=tol)


@pytest.mark.parametrize("options", [DEFAULT, TIGHT])
def test_three_rows_one_row_is_the_min_norm_point(options: dict) -> None:
    # g1·g2 = g1·g3 = 1 = ||g1||²: g1 satisfies the optimality conditions, so d = g1 and w = (1, 0, 0).
    J = torch.tensor([[1.0, 0.0, 0.0], [1.0, 2.0, 0.0], [1.0, -1.0, 3.0]], dtype=F64)
    check(MGDA(**options), J, [1.0, 0.0, 0.0], tol=1e-12)


@pytest.mark.parametrize(("options", "tol"), [(DEFAULT, 1e-2), (TIGHT, 1e-3)])
def test_three_rows_min_norm_point_on_an_edge(options: dict, tol: float) -> None:
    # conv(g1, g2) has its min-norm point (1/2, 1/2, 0) and g3·d = 1 > ||d||² = 1/2: g3 gets weight 0. Frank-Wolfe
    # approaches such a face slowly (measured: 2e-3 with the defaults, 2.5e-4 with the tight options).
    J = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]], dtype=F64)
    check(MGDA(**options), J, [0.5, 0.5, 0.0], tol)


@pytest.mark.parametrize("seed", range(6))
def test_three_random_rows_match_face_enumeration(seed: int) -> None:
    J = torch.randn(3, 5, dtype=F64, generator=torch.Generator().manual_seed(seed))
    expected_weights = exact_min_norm_weights(J)
    expected = expected_weights @ J
    assert_min_norm_optimality(J, expected, expected_weights > 1e-9, tol=1e-9)  # the enumeration is exact
    # Some of these optima lie on a face, where Frank-Wolfe is slow: loose tolerances (measured: 4.7e-2 on the
    # direction and 2.7e-2 on the optimality conditions with the defaults, 1.4e-2 and 4e-3 with epsilon=1e-7).
    for agg, tol, kkt_tol in [(MGDA(epsilon=1e-7, max_iters=2000), 0.03, 0.01), (MGDA(), 0.1, 0.05)]:
        d = agg(J)
        assert (d - expected).norm() <= tol * expected.norm()
        assert_min_norm_optimality(J, d, expected_weights > 0.05, kkt_tol)
        weights = agg.last_stats["weights"]
        assert (weights >= 0).all() and weights.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_matches_torchjd_mgda(seed: int) -> None:
    # torchjd's own aggregator (its own Gramian path) with our default stopping constants.
    J = torch.randn(3, 5, dtype=F64, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(MGDA()(J), TorchJDMGDA(epsilon=1e-5, max_iters=250)(J))


@pytest.mark.parametrize(("options", "name"), [({"epsilon": 0.0}, "epsilon"), ({"max_iters": 0}, "max_iters")])
def test_invalid_options(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        MGDA(**options)
