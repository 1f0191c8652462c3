"""Aligned-MTL (Senushkin et al., CVPR 2023): aligned task gradients with condition number 1.

With ``J = U Σ Vᵀ`` the aligned gradients are ``Ĵ = σ U Vᵀ`` and the output is their sum (the authors' balancer;
torchjd takes the mean), i.e. the weights are ``σ G^{-1/2} 1`` (on the row space). For orthogonal rows
``G^{-1/2} = diag(1/||g_i||)``: every row is rescaled to the norm ``σ``, so ``w_i = σ / ||g_i||`` and
``d = σ Σ_i u_i`` (the unit rows).
"""

import math

import pytest
import torch
from torchjd.aggregation import AlignedMTL as TorchJDAlignedMTL

from mtbert.aggregators import AlignedMTL

F64 = torch.float64
SCALE_MODES = ("min", "median", "rmse")


def diagonal(*norms: float, n_columns: int) -> torch.Tensor:
    """Orthogonal rows ``norms[i] · e_i`` of a ``[len(norms), n_columns]`` matrix."""
    J = torch.zeros(len(norms), n_columns, dtype=F64)
    for i, norm in enumerate(norms):
        J[i, i] = norm
    return J


def check(agg: AlignedMTL, J: torch.Tensor, expected_weights: list[float], expected_direction: list[float]) -> None:
    d = agg(J)
    torch.testing.assert_close(agg.last_stats["weights"], torch.tensor(expected_weights, dtype=F64))
    torch.testing.assert_close(d, torch.tensor(expected_direction, dtype=F64))


@pytest.mark.parametrize(
    ("scale_mode", "sigma"),
    [
        ("min", 1.0),  # the smallest singular value (the paper's choice)
        ("median", 2.0),  # the median of (4, 2, 1)
        ("rmse", math.sqrt(7.0)),  # √(mean eigenvalue of G) = √((16 + 4 + 1)/3)
    ],
)
def test_orthogonal_rows_of_unequal_norms(scale_mode: str, sigma: float) -> None:
    J = diagonal(1.0, 2.0, 4.0, n_columns=4)
    weights = [sigma * 1.0, sigma / 2.0, sigma / 4.0]
    check(AlignedMTL(scale_mode=scale_mode), J, weights, [sigma] * 3 + [0.0])


def test_median_of_an_even_rank_is_the_lower_middle_value() -> None:
    # Singular values (4, 3, 2, 1): torch.median (as torchjd and the original code use it) takes the lower middle
    # value, σ = 2, not the mean √((9 + 4)/2) of the two middle eigenvalues.
    J = diagonal(1.0, 2.0, 3.0, 4.0, n_columns=5)
    check(AlignedMTL(scale_mode="median"), J, [2 / n for n in (1.0, 2.0, 3.0, 4.0)], [2.0] * 4 + [0.0])


@pytest.mark.parametrize(
    ("scale_mode", "sigma"),
    [
        ("min", 2.0 - math.sqrt(2.0)),
        ("median", 2.0 - math.sqrt(2.0)),  # lower middle of two values: the smaller one
        ("rmse", math.sqrt(6.0)),  # the eigenvalues (2 ± √2)² = 6 ± 4√2 of G average to 6
    ],
)
def test_two_conflicting_rows(scale_mode: str, sigma: float) -> None:
    # G = [[10, -4], [-4, 2]] = S² with S = [[3, -1], [-1, 1]] (eigenvalues 2 ± √2, the singular values of J), so
    # G^{-1/2} 1 = S⁻¹ 1 = ½[[1, 1], [1, 3]] 1 = (1, 2): w = σ (1, 2) and d = σ (g0 + 2 g1) = σ (0, 1, 0, 1).
    J = torch.tensor([[2.0, 1.0, 2.0, 1.0], [-1.0, 0.0, -1.0, 0.0]], dtype=F64)
    check(AlignedMTL(scale_mode=scale_mode), J, [sigma, 2 * sigma], [0.0, sigma, 0.0, sigma])


def test_zero_row_gets_zero_weight_and_min_is_the_smallest_nonzero_singular_value() -> None:
    # Rank 2: the transformation acts on the row space only and σ = 1 (not 0).
    J = diagonal(1.0, 2.0, 0.0, n_columns=4)
    check(AlignedMTL(), J, [1.0, 0.5, 0.0], [1.0, 1.0, 0.0, 0.0])


def test_rank_one_rows_are_their_own_alignment() -> None:
    # g and 2g: one singular value σ = √5 (U = (1, 2)/√5, V = e_0), so Ĵ = σ U Vᵀ = J and d = 3 e_0; the weights are
    # σ G^{-1/2} 1 on the row space: √5 · (1/√5) u uᵀ 1 with u = (1, 2)/√5, uᵀ1 = 3/√5, i.e. (3/5)(1, 2).
    J = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=F64)
    check(AlignedMTL(), J, [0.6, 1.2], [3.0, 0.0])


@pytest.mark.parametrize("scale_mode", SCALE_MODES)
def test_zero_rows_give_zero_and_float64_weights(scale_mode: str) -> None:
    # Rank 0: no singular value to scale by; every weight gives 0, and the weights keep the [T] float64 contract.
    agg = AlignedMTL(scale_mode=scale_mode)
    d = agg(torch.zeros(3, 4, dtype=torch.float32))
    assert d.dtype == torch.float32 and torch.equal(d, torch.zeros(4))
    weights = agg.last_stats["weights"]
    assert weights.dtype == F64 and weights.shape == (3,) and torch.isfinite(weights).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale_mode", SCALE_MODES)
def test_output_is_the_sum_of_the_aligned_gradients(seed: int, scale_mode: str) -> None:
    J = torch.randn(3, 6, dtype=F64, generator=torch.Generator().manual_seed(seed))
    U, S, Vh = torch.linalg.svd(J, full_matrices=False)
    sigma = {"min": S.min(), "median": S.median(), "rmse": S.square().mean().sqrt()}[scale_mode]
    aligned = sigma * U @ Vh  # Ĵ = σ U Vᵀ (Algorithm 1, independent of sign conventions)
    # The aligned gradients are orthogonal with equal norms σ: condition number 1.
    torch.testing.assert_close(aligned @ aligned.T, sigma**2 * torch.eye(3, dtype=F64))
    torch.testing.assert_close(AlignedMTL(scale_mode=scale_mode)(J), aligned.sum(dim=0))


@pytest.mark.parametrize("scale_mode", SCALE_MODES)
def test_departs_from_torchjd_by_summing_as_the_authors(scale_mode: str) -> None:
    # torchjd averages the aligned gradients (uniform preference vector); the authors' balancer sums them.
    J = torch.randn(3, 6, dtype=F64, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(AlignedMTL(scale_mode=scale_mode)(J), 3 * TorchJDAlignedMTL(scale_mode=scale_mode)(J))


def test_default_scale_mode_is_min() -> None:
    # σ = 1, the smallest of (4, 2, 1) (median and rmse would give 2 and √7).
    check(AlignedMTL(), diagonal(1.0, 2.0, 4.0, n_columns=3), [1.0, 0.5, 0.25], [1.0, 1.0, 1.0])


def test_float32_rows_with_a_dependent_row_give_their_float64_result() -> None:
    """The issue's matrix: float32 rounding of J[0] + J[1] is noise, not a third direction to align."""
    J = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    J[2] = J[0] + J[1]
    ours32, ours64 = AlignedMTL()(J), AlignedMTL()(J.double())
    assert ours64.norm().item() == pytest.approx(3 * 4.2168, rel=1e-4)  # T × torchjd's mean, 4.22 in the issue
    torch.testing.assert_close(ours32.double(), ours64, rtol=0, atol=1e-6 * ours64.norm().item())


def test_invalid_scale_mode() -> None:
    with pytest.raises(ValueError, match="`scale_mode`"):
        AlignedMTL(scale_mode="max")
