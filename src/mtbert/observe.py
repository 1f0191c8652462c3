"""Per-epoch statistics of task-gradient geometry and of the gradient method, read from the aggregator after each step.

The T×T cosine matrix comes free from the Gramian G = J Jᵀ the aggregator already computed:
cos_ij = G_ij / sqrt(G_ii G_jj). Every statistic in the aggregator's ``last_stats`` is averaged over the epoch's
steps the same way, as its class's ``stats`` declares it (:class:`~mtbert.aggregators.Stat`): per task, per ordered
pair ``i_j`` (i ≠ j), per task averaged over the groups of columns, or one value. The sums stay on the Gramian's
device until :meth:`GradientStats.summary`, so a step reads nothing back to the host for them.
"""

from __future__ import annotations

from itertools import combinations, permutations

import torch
from torch import Tensor

from mtbert.aggregators import Aggregator


class GradientStats:
    """Per task pair: the mean cosine and the share of steps in which the two gradients conflict (cos < 0); per
    statistic of the method: its mean over the steps (keys ``grad/<stat>_<task>``, ``grad/<stat>_<i>_<j>``,
    ``grad/<stat>``)."""

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = tasks
        self.reset()

    def reset(self) -> None:
        t = len(self.tasks)
        self.cos_sum = torch.zeros(t, t, dtype=torch.float64)
        self.conflicts = torch.zeros(t, t, dtype=torch.float64)
        self.pair_steps = torch.zeros(t, t, dtype=torch.float64)
        self.extra: dict[str, Tensor] = {}
        self.steps = 0

    def update(self, aggregator: Aggregator) -> None:
        gram = getattr(aggregator, "last_gramian", None)
        if gram is None or len(self.tasks) < 2:
            return
        self.steps += 1
        gram = gram.detach().double()
        if self.cos_sum.device != gram.device:
            self.cos_sum, self.conflicts, self.pair_steps = (
                x.to(gram.device) for x in (self.cos_sum, self.conflicts, self.pair_steps)
            )
        norms = gram.diagonal().clamp(min=0).sqrt()
        present = norms > 0  # a task absent from the step has a zero row: no cosine to speak of
        cos = gram / (norms[:, None] * norms[None, :]).clamp(min=1e-300)
        valid = (present[:, None] & present[None, :]).double()
        self.cos_sum += cos * valid
        self.conflicts += (cos < 0).double() * valid
        self.pair_steps += valid
        declared = getattr(aggregator, "stats", {})
        for key, value in getattr(aggregator, "last_stats", {}).items():
            if key not in declared:
                raise ValueError(f"{type(aggregator).__name__} set the statistic {key!r} but does not declare it")
            value = value.detach().double()
            if declared[key].shape == "group_task":
                value = value.mean(dim=0)
            self.extra[key] = self.extra[key] + value if key in self.extra else value.clone()

    def summary(self) -> dict[str, float]:
        out = {}
        cos_sum, conflicts, pair_steps = (x.cpu() for x in (self.cos_sum, self.conflicts, self.pair_steps))
        for i, j in combinations(range(len(self.tasks)), 2):
            pair = f"{self.tasks[i]}_{self.tasks[j]}"
            steps = pair_steps[i, j].item()
            if steps:
                out[f"grad/cos_{pair}"] = cos_sum[i, j].item() / steps
                out[f"grad/conflict_{pair}"] = conflicts[i, j].item() / steps
        if not self.steps:
            return out
        for key, total in self.extra.items():
            mean = total.cpu() / self.steps
            if mean.ndim == 0:
                out[f"grad/{key}"] = mean.item()
            elif mean.ndim == 1:
                for i, task in enumerate(self.tasks):
                    out[f"grad/{key}_{task}"] = mean[i].item()
            else:
                for i, j in permutations(range(len(self.tasks)), 2):
                    out[f"grad/{key}_{self.tasks[i]}_{self.tasks[j]}"] = mean[i, j].item()
        return out

    def state_dict(self) -> dict[str, Tensor | dict[str, Tensor]]:
        return {
            "cos_sum": self.cos_sum.cpu(),
            "conflicts": self.conflicts.cpu(),
            "pair_steps": self.pair_steps.cpu(),
            "extra": {key: value.cpu() for key, value in self.extra.items()},
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.cos_sum, self.conflicts, self.pair_steps = (
            state["cos_sum"],
            state["conflicts"],
            state["pair_steps"],
        )
        self.extra = dict(state["extra"])
        self.steps = state["steps"]
