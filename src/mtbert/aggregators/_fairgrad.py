"""FairGrad: alpha-fair allocation of the update among the tasks."""

from __future__ import annotations

import torch
from torch import Tensor

from . import _options
from ._base import GramianWeightedAggregator
from ._nashmtl import fair_weights
from ._registry import register


@register("fairgrad")
class FairGrad(GramianWeightedAggregator):
    """FairGrad, Ban & Ji, "Fair Resource Allocation in Multi-Task Learning", ICML 2024, Eq. 4: weights ``w > 0``
    solving ``G w = w^(-1/alpha)`` (``G`` the Gramian), so each task's first-order gain ``g_iᵀ d`` is
    ``w_i^(-1/alpha)``: alpha-fairness between the tasks' improvements. The output is ``T Σ_i w_i g_i``, as the
    authors' ``overwrite_grad`` multiplies by the number of tasks "to match the sum loss"; each task's own
    parameters (head, PAL) keep their unweighted gradient, as in the authors' code (only the shared parameters'
    gradient is replaced).

    ``alpha = 0`` is the plain sum; ``alpha = 1`` proportional fairness (Nash-MTL's condition); ``alpha → ∞``
    max-min fairness. The authors (and torchjd) solve the equations with scipy's ``least_squares`` on the raw
    Gramian from uniform weights, whose default tolerances make the answer depend on the gradients' scale; they are
    the stationarity of a convex function, so here they are solved exactly (:func:`~mtbert.aggregators._nashmtl.
    fair_weights`, damped Newton on the normalised Gramian, warm-started from the previous step's weights).

    :param alpha: The fairness parameter (>= 0; default 1.0, proportional fairness).
    :param max_iters: Most Newton iterations per step (integer >= 1; default 100, far more than it takes).
    """

    resizable_buffers = ("last",)

    def __init__(self, alpha: float = 1.0, max_iters: int = 100) -> None:
        super().__init__()
        self.alpha = _options.real("alpha", alpha)
        self.max_iters = _options.count("max_iters", max_iters)
        self.register_buffer("last", torch.zeros(0, dtype=torch.float64))

    def reset(self) -> None:
        self.last = torch.zeros(0, dtype=torch.float64)

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        n_tasks = len(gramian)
        if self.alpha == 0:
            return torch.ones(n_tasks, dtype=torch.float64)
        self.last = fair_weights(gramian, self.alpha, self.last, self.max_iters)
        return self.last * n_tasks

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, max_iters={self.max_iters}"
