"""MGDA: the minimum-norm point of the convex hull of the task gradients, solved exactly."""

from __future__ import annotations

from torch import Tensor

from ._base import GramianWeightedAggregator
from ._linalg import min_norm_weights
from ._registry import register


@register("mgda")
class MGDA(GramianWeightedAggregator):
    """MGDA, Désidéri, "Multiple-gradient descent algorithm (MGDA) for multiobjective optimization",
    Comptes Rendus Mathématique 2012, in the form of Sener & Koltun, "Multi-Task Learning as Multi-Objective
    Optimization", NeurIPS 2018 (Eq. 3: the min-norm point of the convex hull of the task gradients).

    The output is ``d = Σ_i α_i g_i`` with ``α`` on the simplex minimising ``||d||``; it satisfies
    ``d · g_i ≥ ||d||²`` for every ``i``, with equality where ``α_i > 0``. Scale: a convex combination (weights sum
    to 1, the scale of a mean, as the authors' ``scale[t] * loss_t`` with ``Σ scale = 1``).

    Solved exactly on the ``[T, T]`` Gramian, as a non-negative least-squares problem (Lawson & Hanson's active-set
    method, :func:`~mtbert.aggregators._linalg.min_norm_weights`): finite, and within ~1e-9 (relative) of the
    optimum on every matrix tested. Sener & Koltun's ``MinNormSolver`` (and torchjd's ``MGDAWeighting``) iterate
    Frank-Wolfe from fixed stopping constants instead, which stops far from the optimum when the row norms differ
    (one of 3 weights off by 0.8 on ``[[-1, -1, 0, 0], [-8, -15, -2, 10], [150, 161, -64, -76]]``). No options.
    """

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        return min_norm_weights(gramian, rtol)
