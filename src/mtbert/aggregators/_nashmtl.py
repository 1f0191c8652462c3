"""Nash-MTL: the Nash bargaining solution among the tasks, and the alpha-fair solver it shares with FairGrad."""

from __future__ import annotations

import torch
from torch import Tensor

from . import _options
from ._base import GramianWeightedAggregator
from ._registry import register

# Relative to each task's own |g_i|²: keeps the problem bounded when 0 is in the gradients' hull (e.g. g_2 = -g_1),
# and leaves a task whose gradient is 1e-6 of another's as solved as the rest.
_RIDGE = 1e-10
_TOL = 1e-12


def fair_weights(gramian: Tensor, alpha: float = 1.0, start: Tensor | None = None, max_iters: int = 100) -> Tensor:
    """The ``w > 0`` with ``G w = w^(-1/alpha)`` (``G`` = ``gramian``): alpha = 1 is Nash-MTL's ``G w = 1 / w``.

    It is the minimiser of the convex ``½ wᵀ G w - Σ_i φ(w_i)`` with ``φ' (w) = w^(-1/alpha)`` (``φ = log`` for
    alpha = 1), found by damped Newton from ``start`` (default: ones). Solved on ``G / |G|_F`` plus a ridge of 1e-10
    of each diagonal entry, whose solution is ``|G|_F^(alpha / (alpha + 1))`` times the one sought, as the authors'
    Nash-MTL normalises. A zero row (a task with no shared gradient) has no finite solution: it gets weight 0."""
    n = len(gramian)
    present = gramian.diagonal() > 0
    w = torch.zeros(n, dtype=gramian.dtype)
    if not present.any():
        return w
    sub = gramian[present][:, present]
    scale = float(sub.norm())
    G = sub / scale
    G = G + _RIDGE * torch.diag(G.diagonal())
    factor = scale ** (alpha / (alpha + 1))
    begin = torch.ones(len(G), dtype=gramian.dtype) if start is None or len(start) != n else start[present] * factor
    begin = torch.where(begin > 0, begin, torch.ones_like(begin))
    w[present] = _newton(G, begin, alpha, max_iters) / factor
    return w


def _newton(G: Tensor, w: Tensor, alpha: float, max_iters: int) -> Tensor:
    power = 1.0 - 1.0 / alpha

    def f(a: Tensor) -> float:
        barrier = a.log().sum() if alpha == 1.0 else (a**power).sum() / power
        return (0.5 * a @ G @ a - barrier).item()

    for _ in range(max_iters):
        grad = G @ w - w ** (-1.0 / alpha)
        if grad.norm() < _TOL:
            break
        step = -torch.linalg.solve(G + torch.diag(w ** (-1.0 / alpha - 1.0) / alpha), grad)
        t, value = 1.0, f(w)
        while (w + t * step <= 0).any() or f(w + t * step) > value + 1e-4 * t * (grad @ step).item():
            t /= 2
            if t < 1e-12:
                return w
        w = w + t * step
    return w


@register("nashmtl")
class NashMTL(GramianWeightedAggregator):
    """Nash-MTL, Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022, Algorithm 1: weights
    ``α > 0`` with ``G α = 1 / α`` (``G`` the Gramian), so each task's gain
    ``g_iᵀ d`` is ``1 / α_i`` (the Nash bargaining solution); the output ``d = Σ α_i g_i`` is rescaled to norm
    ``max_norm`` when longer. Each task's own parameters (head, PAL) are weighed by ``α_i`` too, as the authors'
    weighted loss does.

    The paper approaches the solution with up to 20 convex approximations solved by cvxpy/ECOS (as
    ``torchjd.aggregation.NashMTL`` does), which costs more than the rest of a training step here and stops within
    their 1e-3 / 1e-6 criteria; the condition is the stationarity of the convex ``½ αᵀ G α - Σ log α_i``, so it is
    solved exactly (:func:`fair_weights`: damped Newton on ``[T, T]``, warm-started from the previous ``α``, kept
    in a buffer so a resumed run continues exactly). Scale: invariant (``||d||² = T`` before the rescaling).

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

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        if len(self.alpha) != len(gramian) or self.steps.item() % self.update_weights_every == 0:
            self.alpha = fair_weights(gramian, 1.0, self.alpha)
        self.steps += 1
        self.own_weights = self.alpha.clone()
        norm = (self.alpha @ gramian @ self.alpha).clamp(min=0).sqrt().item()
        if self.max_norm > 0 and norm > self.max_norm:
            return self.alpha * (self.max_norm / norm)
        return self.alpha.clone()

    def extra_repr(self) -> str:
        return f"max_norm={self.max_norm}, update_weights_every={self.update_weights_every}"
