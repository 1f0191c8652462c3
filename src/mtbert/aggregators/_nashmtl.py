"""Nash-MTL: the update as the Nash bargaining solution among the tasks."""

from __future__ import annotations

import torch
from torch import Tensor

from . import _options
from ._base import GramianWeightedAggregator

_RIDGE = 1e-8  # keeps the problem bounded when the gradients are linearly dependent
_TOL = 1e-10


def bargaining_weights(gramian: Tensor, start: Tensor, max_iters: int = 100) -> Tensor:
    """The ``α > 0`` with ``G α = 1 / α`` (``G`` = ``gramian``): the minimiser of the convex
    ``½ αᵀ G α - Σ_i log α_i``, found by damped Newton from ``start``. Solved on ``G / |G|_F`` (plus a 1e-8 ridge),
    whose solution is ``sqrt(|G|_F)`` times the one sought, as the authors' code does."""
    scale = gramian.norm().clamp(min=1e-300).sqrt()
    G = gramian / scale**2 + _RIDGE * torch.eye(len(gramian), dtype=gramian.dtype)
    return _newton(G, start * scale, max_iters) / scale


def _newton(G: Tensor, start: Tensor, max_iters: int) -> Tensor:
    alpha = start.clone()

    def f(a: Tensor) -> float:
        return (0.5 * a @ G @ a - a.log().sum()).item()

    for _ in range(max_iters):
        grad = G @ alpha - 1 / alpha
        if grad.norm() < _TOL:
            break
        step = -torch.linalg.solve(G + torch.diag(1 / alpha**2), grad)
        t, value = 1.0, f(alpha)
        while (alpha + t * step <= 0).any() or f(alpha + t * step) > value + 1e-4 * t * (grad @ step).item():
            t /= 2
            if t < 1e-12:
                return alpha
        alpha = alpha + t * step
    return alpha


class NashMTL(GramianWeightedAggregator):
    """Nash-MTL, Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022, Algorithm 1: weights
    ``α > 0`` with ``G α = 1 / α`` (``G`` the Gramian), so each task's gain
    ``g_iᵀ d`` is ``1 / α_i`` (the Nash bargaining solution); the output ``d = Σ α_i g_i`` is rescaled to norm
    ``max_norm`` when longer. Each task's own parameters (head, PAL) are weighed by ``α_i`` too, as the authors'
    weighted loss does.

    The paper approaches the solution with up to 20 convex approximations solved by cvxpy/ECOS (as
    ``torchjd.aggregation.NashMTL`` does), which costs more than the rest of a training step here; the condition
    is the stationarity of the convex ``½ αᵀ G α - Σ log α_i``, so it is solved exactly (damped Newton on
    ``[T, T]``, warm-started from the previous ``α``, kept in a buffer so a resumed run continues exactly).

    :param max_norm: Largest norm of the output (>= 0; 0 disables the rescaling; default 1.0, the paper's).
    :param update_weights_every: Solve for ``α`` every this many steps, reuse it in between (>= 1, default 1).
    """

    resizable_buffers = ("alpha",)

    def __init__(self, max_norm: float = 1.0, update_weights_every: int = 1) -> None:
        super().__init__()
        self.max_norm = _options.real("max_norm", max_norm)
        self.update_weights_every = _options.count("update_weights_every", update_weights_every)
        self.register_buffer("alpha", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def reset(self) -> None:
        self.alpha = torch.zeros(0, dtype=torch.float64)
        self.steps.zero_()

    def weights(self, gramian: Tensor, counts: Tensor | None) -> Tensor:
        if len(self.alpha) != len(gramian) or self.steps.item() % self.update_weights_every == 0:
            start = self.alpha if len(self.alpha) == len(gramian) else torch.ones(len(gramian), dtype=torch.float64)
            self.alpha = bargaining_weights(gramian, start)
        self.steps += 1
        self.own_weights = self.alpha.clone()
        norm = (self.alpha @ gramian @ self.alpha).clamp(min=0).sqrt().item()
        if self.max_norm > 0 and norm > self.max_norm:
            return self.alpha * (self.max_norm / norm)
        return self.alpha.clone()

    def extra_repr(self) -> str:
        return f"max_norm={self.max_norm}, update_weights_every={self.update_weights_every}"
