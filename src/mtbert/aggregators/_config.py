"""ConFIG: the conflict-free direction that makes equal angles with every task gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GramianWeightedAggregator


class ConFIG(GramianWeightedAggregator):
    """ConFIG, Liu et al., "ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks", ICLR 2025,
    Eq. 2: ``d = (Σ_i g_iᵀ u) u`` with ``u`` the unit vector of ``pinv([g_1/|g_1|, …, g_T/|g_T|]ᵀ) 1``, so ``u``
    makes the same angle with every task gradient (when the rows are independent) and ``d`` has their summed
    projections as length.

    Computed from the Gramian alone (the same result as ``torchjd.aggregation.ConFIG``, which takes a
    pseudo-inverse of the ``[T, P]`` matrix): with ``C`` the cosine matrix and ``a = pinv(C) 1``, the direction is
    ``Σ_i (a_i / |g_i|) g_i`` up to scale. A zero row gets weight 0. Scale: a sum. No options.
    """

    def weights(self, gramian: Tensor, counts: Tensor | None) -> Tensor:
        norms = gramian.diagonal().clamp(min=0).sqrt()
        present = norms > 0
        inv = torch.where(present, 1 / norms.clamp(min=1e-300), torch.zeros_like(norms))
        cosines = gramian * inv[:, None] * inv[None, :]
        b = inv * (torch.linalg.pinv(cosines, hermitian=True) @ present.double())
        norm2 = b @ gramian @ b
        if norm2 <= 0:
            return torch.zeros_like(norms)
        return b * (gramian @ b).sum() / norm2
