"""IMTL-G: impartial multi-task learning, gradient part."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GramianWeightedAggregator
from ._linalg import equal_angle_weights
from ._registry import register

_CANCEL = 1e-12  # a sum of weights this small relative to their magnitudes is a cancellation: nothing to normalise


@register("imtlg")
class IMTLG(GramianWeightedAggregator):
    """IMTL-G, Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021, in the generalised form of
    Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (supports linearly dependent rows).

    The output ``d = Σ_i α_i g_i`` has equal projections onto every task's unit gradient,
    ``d · g_i / ||g_i||`` is the same for all ``i``, with ``Σ_i α_i = 1`` (scale of a convex-ish
    combination, like a mean, not a sum): ``α ∝ D⁻¹ C⁺ 1`` (``C`` the cosines, ``D`` the norms;
    :func:`~mtbert.aggregators._linalg.equal_angle_weights`), which for independent rows is the paper's
    ``α ∝ G⁻¹ (||g_i||)_i``. The weights are zero if they cannot be normalised (they sum to 0, e.g. for two opposite
    gradients, where only ``d = 0`` has equal projections). No parameters.

    Dependent rows (Quinton & Rey's generalisation): the pseudo-inverse is taken on the unit gradients, so IMTL-G
    keeps its defining invariance (scaling one task's loss changes nothing); torchjd's ``G⁺ (||g_i||)`` does not:
    for ``g`` and ``-g/2`` it returns ``2.5 g``, whose projections are ``±2.5 |g|``. The rank is decided at the
    precision of ``J``'s dtype (:class:`~mtbert.aggregators._linalg.Spectrum`), so float32 rounding of dependent
    rows is not inverted as a direction (the old float64 ``pinv`` of a float32 Jacobian's Gramian collapsed the
    output to ~1e-7 of its norm). LibMTL's ``IMTL`` (the paper's closed form) inverts ``D Uᵀ`` and agrees on
    independent rows. Not non-conflicting: when ``1ᵀ G⁻¹ n < 0`` the normalisation ``Σ α = 1`` points ``d`` against
    every task (seen on 8 nearly parallel rows).
    """

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        v = equal_angle_weights(gramian, rtol)
        total = v.sum()
        if total.abs() <= _CANCEL * v.abs().sum():
            return torch.zeros_like(v)
        return v / total
