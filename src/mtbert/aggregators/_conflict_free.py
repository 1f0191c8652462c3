"""ConFIG, conflict-free inverse gradients (Liu et al., 2025): the direction at equal angles to every task gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GramianWeightedAggregator
from ._linalg import equal_angle_weights
from ._registry import register


@register("config")
class ConFIG(GramianWeightedAggregator):
    """ConFIG, Liu et al., "ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks", ICLR 2025,
    Eq. 2: ``d = (Σ_i g_iᵀ u) u`` with ``u`` the unit vector of ``pinv([g_1/|g_1|, …, g_T/|g_T|]ᵀ) 1``, so ``u``
    makes the same angle with every task gradient (when the rows are independent) and ``d`` has their summed
    projections as length (the authors' ``ConFIG_update`` with its defaults, ``EqualWeight`` and
    ``ProjectionLength``).

    Computed from the Gramian alone: with ``C`` the cosine matrix and ``a = C⁺ 1``, the direction is
    ``Σ_i (a_i / |g_i|) g_i`` up to scale (:func:`~mtbert.aggregators._linalg.equal_angle_weights`: IMTL-G's
    direction; the two differ in length); ``C⁺`` keeps the eigenvalues above the rank tolerance of ``J``'s dtype.
    A zero row gets weight 0; when ``1`` has no component in the row space of ``C`` (e.g. two opposite gradients)
    the output is 0. Scale: a sum. No options.
    """

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        b = equal_angle_weights(gramian, rtol)
        norm2 = b @ gramian @ b
        if not norm2 > 0:
            return torch.zeros_like(b)
        return b * (gramian @ b).sum() / norm2
