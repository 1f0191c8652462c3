"""Linear scalarisation: the plain sum of the task gradients and a fixed weighted sum."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._base import GramianWeightedAggregator
from ._registry import register


@register("sum")
class Sum(GramianWeightedAggregator):
    """Sum of the task gradients, ``Σ_i g_i`` (equal-weight linear scalarisation, i.e. the gradient
    of the summed losses). Scale: sum, not mean. No parameters."""

    linear = True

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        return torch.ones(gramian.shape[0], dtype=torch.float64)


@register("weighted")
class Weighted(GramianWeightedAggregator):
    """Fixed weighted sum of the task gradients, ``Σ_i w_i g_i`` (linear scalarisation with
    constant loss weights).

    :param weights: A sequence of ``T`` finite non-negative floats, one per task (in the row order
        of ``J``). Its length is checked against ``T`` by :meth:`check_tasks` (before training) and at call time.
    """

    def __init__(self, weights: Sequence[float]) -> None:
        super().__init__()
        if isinstance(weights, str | bytes) or not isinstance(weights, Sequence | Tensor):
            raise ValueError(f"Option `weights` must be a sequence of non-negative floats. Found weights={weights!r}.")
        values = [float(w) for w in weights]
        if len(values) == 0 or any(not math.isfinite(w) or w < 0.0 for w in values):
            raise ValueError(
                "Option `weights` must be a non-empty sequence of finite non-negative floats. "
                f"Found weights={list(weights)!r}."
            )
        self.task_weights = tuple(values)

    linear = True

    def check_tasks(self, n_tasks: int) -> None:
        super().check_tasks(n_tasks)
        if len(self.task_weights) != n_tasks:
            raise ValueError(
                f"Option `weights` has {len(self.task_weights)} entries for {n_tasks} tasks: give exactly one "
                "weight per task, in the order of `tasks`."
            )

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        self.check_tasks(gramian.shape[0])
        return torch.tensor(self.task_weights, dtype=torch.float64)

    def extra_repr(self) -> str:
        return f"weights={list(self.task_weights)}"
