"""CAGrad: the direction that maximises the worst task's improvement within a ball around the mean gradient."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from . import _options
from ._base import GramianWeightedAggregator

_RESCALES = (0, 1, 2)
_SLSQP = {"ftol": 1e-12, "maxiter": 200}  # tighter than scipy's 1e-6: the weights to ~1e-6, not ~1e-3


class CAGrad(GramianWeightedAggregator):
    """CAGrad, Liu et al., "Conflict-Averse Gradient Descent for Multi-task Learning", NeurIPS 2021, Algorithm 1:
    ``d = g_0 + (c |g_0| / |g_w|) g_w`` with ``g_0`` the mean gradient and ``w`` on the simplex minimising
    ``g_wᵀ g_0 + c |g_0| |g_w|`` (the dual of maximising the worst task's gain ``min_i g_iᵀ d`` within the ball
    ``|d - g_0| <= c |g_0|``). Solved as the authors' code does, with scipy's SLSQP on the ``[T, T]`` Gramian
    (normalised by its trace first, which leaves ``w`` unchanged); then divided by ``1 + c²`` (``rescale: 1``, their
    default), ``1 + c`` (2) or nothing (0: the same direction as ``torchjd.aggregation.CAGrad``).

    ``c = 0`` gives the mean gradient; larger ``c`` leans further toward the worst-off task. Scale: a mean.

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

    def weights(self, gramian: Tensor, counts: Tensor | None) -> Tensor:
        n_tasks = gramian.shape[0]
        trace = gramian.diagonal().sum().item()
        mean = torch.full((n_tasks,), 1 / n_tasks, dtype=torch.float64)
        if trace <= 0 or self.c == 0:
            return mean
        G = (gramian / trace).numpy()
        radius = self.c * np.sqrt(max(mean.numpy() @ G @ mean.numpy(), 0.0) + 1e-8)

        def objective(w: np.ndarray) -> float:
            return float(w @ G @ mean.numpy() + radius * np.sqrt(max(w @ G @ w, 0.0) + 1e-8))

        start = mean.numpy()
        constraints = ({"type": "eq", "fun": lambda w: 1 - w.sum()},)
        bounds = [(0, 1)] * n_tasks
        w = minimize(objective, start, bounds=bounds, constraints=constraints, method="SLSQP", options=_SLSQP).x
        norm = np.sqrt(max(w @ G @ w, 0.0))
        out = mean + torch.from_numpy(radius / (norm + 1e-8) * w)
        return out / {0: 1.0, 1: 1 + self.c**2, 2: 1 + self.c}[self.rescale]

    def extra_repr(self) -> str:
        return f"c={self.c}, rescale={self.rescale}"
