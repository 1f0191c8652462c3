"""Per-epoch statistics of task-gradient geometry, read from the aggregator after each step.

The T×T cosine matrix comes free from the Gramian G = J Jᵀ the aggregator already computed:
cos_ij = G_ij / sqrt(G_ii G_jj).
"""

from __future__ import annotations

from itertools import combinations, permutations

import torch
from torch import Tensor

from mtbert.aggregators import Aggregator


class GradientStats:
    """Mean cosine and share of conflicting steps (cos < 0) per task pair, and method-specific counters
    (e.g. GradVac's ``corrections`` per ordered pair ``i_j``: task i's gradient corrected towards task j)."""

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
        gram = gram.detach().double().cpu()
        norms = gram.diagonal().sqrt()
        present = norms > 0  # a task absent from the step has a zero row: no cosine to speak of
        cos = gram / (norms[:, None] * norms[None, :]).clamp(min=1e-30)
        valid = (present[:, None] & present[None, :]).double()
        self.cos_sum += cos * valid
        self.conflicts += (cos < 0).double() * valid
        self.pair_steps += valid
        for key, value in getattr(aggregator, "last_stats", {}).items():
            value = value.detach().double().cpu()
            self.extra[key] = self.extra.get(key, torch.zeros_like(value)) + value

    def summary(self) -> dict[str, float]:
        out = {}
        for i, j in combinations(range(len(self.tasks)), 2):
            pair = f"{self.tasks[i]}_{self.tasks[j]}"
            steps = self.pair_steps[i, j].item()
            if steps:
                out[f"grad/cos_{pair}"] = self.cos_sum[i, j].item() / steps
                out[f"grad/conflict_{pair}"] = self.conflicts[i, j].item() / steps
        for key, value in self.extra.items():
            if value.shape == (len(self.tasks),) and self.steps:  # e.g. the weights of Gramian methods
                for i, task in enumerate(self.tasks):
                    out[f"grad/{key}_{task}"] = value[i].item() / self.steps
            if value.shape == (len(self.tasks), len(self.tasks)):
                for i, j in permutations(range(len(self.tasks)), 2):
                    out[f"grad/{key}_{self.tasks[i]}_{self.tasks[j]}"] = value[i, j].item()
        return out

    def state_dict(self) -> dict[str, Tensor | dict[str, Tensor]]:
        return {
            "cos_sum": self.cos_sum,
            "conflicts": self.conflicts,
            "pair_steps": self.pair_steps,
            "extra": dict(self.extra),
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
