"""CAGrad: the direction that maximises the worst task's improvement within a ball around the mean gradient."""

from __future__ import annotations

import math

import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

from . import _options
from ._base import GramianWeightedAggregator
from ._linalg import min_norm_weights
from ._registry import register

_RESCALES = (0, 1, 2)
_XTOL = 1e-14  # of the search for |g_w| (relative to the largest row norm): the weights to ~1e-12


def cagrad_weights(gramian: Tensor, c: float, rtol: float) -> Tensor:
    """The ``w`` on the simplex minimising ``F(w) = g_wᵀ g_0 + c |g_0| |g_w|`` (``g_w = Σ w_i g_i``, ``g_0`` the
    mean), exactly: with ``|g_w| = min_t (|g_w|² / t + t) / 2``, ``F`` is the minimum over ``t > 0`` of a convex
    function of ``(w, t)`` whose minimum over ``w`` for a fixed ``t`` is the min-norm point of the rows shifted by
    ``(t / r) g_0`` (``r = c |g_0|``; :func:`~mtbert.aggregators._linalg.min_norm_weights`, exact), and whose minimum
    over ``t`` (convex, one-dimensional) Brent's bounded search finds to ``1e-14`` of the largest row norm."""
    n = len(gramian)
    trace = float(gramian.diagonal().sum())
    mean = torch.full((n,), 1.0 / n, dtype=torch.float64)
    G = gramian / trace
    b = G @ mean  # g_i · g_0
    radius = c * math.sqrt(max(float(mean @ b), 0.0))
    ones = torch.ones(n, dtype=torch.float64)

    def inner(t: float) -> Tensor:
        shift = t / radius
        shifted = G + shift * (b[:, None] * ones[None, :] + ones[:, None] * b[None, :]) + shift**2 * float(mean @ b)
        return min_norm_weights(shifted, rtol)

    def objective(t: float) -> float:
        w = inner(t)
        return float(w @ b) + radius / 2 * (float(w @ G @ w) / t + t)

    largest = math.sqrt(float(G.diagonal().max()))
    t = minimize_scalar(objective, bounds=(0.0, largest), method="bounded", options={"xatol": _XTOL * largest}).x
    return inner(t)


@register("cagrad")
class CAGrad(GramianWeightedAggregator):
    """CAGrad, Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021, Algorithm 1:
    ``d = g_0 + (c |g_0| / |g_w|) g_w`` with ``g_0`` the mean gradient and ``w`` on the simplex minimising
    ``g_wᵀ g_0 + c |g_0| |g_w|`` (the dual of maximising the worst task's gain ``min_i g_iᵀ d`` within the ball
    ``|d - g_0| <= c |g_0|``). The authors solve the dual with scipy's SLSQP from uniform weights on the raw Gramian
    (1e-8 added to norms, scipy's default tolerances), so their answer depends on the gradients' scale and stops
    short of the optimum on hard matrices; here it is solved exactly on the trace-normalised Gramian
    (:func:`cagrad_weights`: a one-dimensional convex search over exact min-norm problems); then divided by
    ``1 + c²`` (``rescale: 1``, their default), ``1 + c`` (2) or nothing (0: the same direction as
    ``torchjd.aggregation.CAGrad``), and multiplied by ``T`` as the authors' ``overwrite_grad`` does "to match the
    sum loss".

    ``c = 0`` gives the sum of the gradients; larger ``c`` leans further toward the worst-off task. Scale: a sum
    (``T`` × a mean, as the authors'; before 2026-12-03 this method returned the mean).

    :param c: The radius of the ball around the mean, relative to its norm (>= 0; default 0.4, the paper's
        value for NYUv2 and Cityscapes).
    :param rescale: 0, 1 or 2, as above (default 1).
    """

    def __init__(self, c: float = 0.4, rescale: int = 1) -> None:
        super().__init__()
        self.c = _options.real("c", c)
        if rescale not in _RESCALES or isinstance(rescale, bool):
            raise ValueError(f"Option `rescale` must be one of {list(_RESCALES)}. Found rescale={rescale!r}.")
        self.rescale = rescale

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        n_tasks = gramian.shape[0]
        trace = gramian.diagonal().sum().item()
        mean = torch.full((n_tasks,), 1 / n_tasks, dtype=torch.float64)
        if trace <= 0 or self.c == 0:
            return mean * n_tasks
        w = cagrad_weights(gramian, self.c, rtol)
        norm = float(w @ gramian @ w) ** 0.5
        radius = self.c * float(mean @ gramian @ mean) ** 0.5
        lean = radius / norm * w if norm > 0 else torch.zeros_like(w)  # g_w = 0: the ball's centre, the mean
        return (mean + lean) * n_tasks / {0: 1.0, 1: 1 + self.c**2, 2: 1 + self.c}[self.rescale]

    def extra_repr(self) -> str:
        return f"c={self.c}, rescale={self.rescale}"
