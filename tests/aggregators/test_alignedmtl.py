"""Aligned-MTL (Senushkin et al., CVPR 2023): aligned task gradients with condition number 1."""

import pytest
import torch

from mtbert.aggregators import AlignedMTL


@pytest.mark.parametrize("seed", range(4))
def test_output_is_mean_of_aligned_gradients(seed: int) -> None:
    J = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    U, S, Vh = torch.linalg.svd(J, full_matrices=False)
    aligned = S.min() * U @ Vh  # Ĵ = σ_min U Vᵀ (Algorithm 1, independent of sign conventions)
    # The aligned gradients are orthogonal with equal norms σ_min: condition number 1.
    torch.testing.assert_close(aligned @ aligned.T, S.min() ** 2 * torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(AlignedMTL()(J), aligned.mean(dim=0))


def test_median_scale_mode() -> None:
    J = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    U, S, Vh = torch.linalg.svd(J, full_matrices=False)
    torch.testing.assert_close(AlignedMTL(scale_mode="median")(J), (S.median() * U @ Vh).mean(dim=0))


def test_invalid_scale_mode() -> None:
    with pytest.raises(ValueError, match="`scale_mode`"):
        AlignedMTL(scale_mode="max")
