"""FairGrad: alpha-fair allocation of the update among the tasks."""

from __future__ import annotations

from torch import Tensor
from torchjd.aggregation import FairGradWeighting

from . import _options
from ._torchjd import TorchJDGramianWeighted


class FairGrad(TorchJDGramianWeighted):
    """FairGrad, Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, Eq. 4: weights ``w > 0``
    solving ``G w = w^(-1/alpha)`` (``G`` the Gramian), so each task's first-order gain ``g_iᵀ d`` is
    ``w_i^(-1/alpha)``: alpha-fairness between the tasks' improvements. Wraps
    ``torchjd.aggregation.FairGradWeighting`` (scipy's ``least_squares``).

    ``alpha = 0`` is the uniform mean; ``alpha = 1`` proportional fairness; ``alpha → ∞`` max-min fairness.
    Each task's own parameters (head, PAL) are weighed by ``w_i`` too, as the authors' weighted loss does.

    :param alpha: The fairness parameter (>= 0; default 1.0, proportional fairness).
    :param max_iters: Most function evaluations of the solver (integer >= 1, or null: scipy's default).
    """

    def __init__(self, alpha: float = 1.0, max_iters: int | None = None) -> None:
        alpha, max_iters = _options.real("alpha", alpha), _options.count("max_iters", max_iters, optional=True)
        super().__init__(FairGradWeighting(alpha=alpha, max_iters=max_iters))

    def weights(self, gramian: Tensor, counts: Tensor | None) -> Tensor:
        w = super().weights(gramian, counts)
        self.own_weights = w
        return w

    def extra_repr(self) -> str:
        return f"alpha={self.weighting.alpha}, max_iters={self.weighting.max_iters}"
