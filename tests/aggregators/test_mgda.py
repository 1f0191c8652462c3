"""MGDA (Désidéri 2012; Sener & Koltun 2018): min-norm point of the convex hull of the rows."""

import itertools

import pytest
import torch

from mtbert.aggregators import MGDA


def exact_min_norm(J: torch.Tensor) -> torch.Tensor:
    """Min-norm point of conv(rows of J) by enumerating the faces of the simplex (small T only)."""
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
    return best_alpha @ J


def test_two_rows_equal_closed_form() -> None:
    g1 = torch.tensor([1.0, 0.5, -0.3], dtype=torch.float64)
    g2 = torch.tensor([-0.4, 1.0, 0.2], dtype=torch.float64)
    gamma = torch.clamp((g2 - g1) @ g2 / (g1 - g2).norm() ** 2, 0.0, 1.0)
    expected = gamma * g1 + (1 - gamma) * g2
    torch.testing.assert_close(MGDA()(torch.stack([g1, g2])), expected)


def test_two_rows_one_dominated_gives_the_smaller_row() -> None:
    # g2 lies "behind" g1 (g1·g2 ≥ ||g1||²): the min-norm point is g1 itself (γ clipped to 1).
    g1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    g2 = torch.tensor([2.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(MGDA()(torch.stack([g1, g2])), g1)


@pytest.mark.parametrize("seed", range(6))
def test_three_rows_min_norm_and_descent_property(seed: int) -> None:
    J = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    expected = exact_min_norm(J)
    # Frank-Wolfe is approximate: tight options for a tight check, defaults for a loose one.
    for agg, tol in [(MGDA(epsilon=1e-7, max_iters=2000), 0.03), (MGDA(), 0.1)]:
        d = agg(J)
        assert (d - expected).norm() <= tol * expected.norm()
        assert (J @ d >= d @ d - tol * (d @ d)).all()  # d·g_i ≥ ||d||² (up to tol)
        weights = agg.last_stats["weights"]
        assert (weights >= 0).all() and weights.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize(("options", "name"), [({"epsilon": 0.0}, "epsilon"), ({"max_iters": 0}, "max_iters")])
def test_invalid_options(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        MGDA(**options)
