"""Synthetic dev predictions for the report's tests: three members and an ensemble of each task, with sentences."""

from __future__ import annotations

import numpy as np
from _tasks import TASKS

from mtbert.combine import majority_vote, mean, rounded_mean
from mtbert.report.sources import Curve, TaskDev

MEMBERS = ["finetune-1", "finetune-2", "finetune-3"]


def make_task(name: str, n: int = 40, seed: int = 0) -> TaskDev:
    """Members that agree with gold most of the time; the ensemble combines them by the task's default rule."""
    spec = TASKS[name]
    rng = np.random.default_rng(seed)
    if spec.classes:
        gold = rng.integers(0, spec.classes, n).astype(float)
        logits = rng.normal(size=(len(MEMBERS), n, spec.classes))
        logits[:, np.arange(n), gold.astype(int)] += 0.8
        probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        votes = probabilities.argmax(-1).astype(float)
        ensemble = (rounded_mean if spec.classes > 2 else majority_vote)(votes)
    else:
        gold = rng.uniform(0, 5, n)
        votes = np.clip(gold + rng.normal(0, 1, (len(MEMBERS), n)), 0, 5)
        probabilities = None
        ensemble = mean(votes)
    texts = {c: [f"{c} {i}" for i in range(n)] for c in spec.text_columns}
    return TaskDev(spec, [f"id{i}" for i in range(n)], texts, gold, list(MEMBERS), votes, probabilities, ensemble)


def make_tasks() -> list[TaskDev]:
    return [make_task(name, seed=k) for k, name in enumerate(TASKS)]


def recorded(tasks: list[TaskDev]) -> dict[str, dict[str, float]]:
    """What the ensemble stage would have written to metrics/ensemble.json, computed here from the predictions and
    the CS224N definitions (accuracy, Pearson's r, overall = the mean of the accuracies and (r + 1) / 2), not by the
    report's own code: a report that scores the wrong member's predictions disagrees with it."""
    out: dict[str, dict[str, float]] = {}
    for task in tasks:
        predictions = {**{m: task.votes[k] for k, m in enumerate(task.members)}, "ensemble": task.ensemble}
        for name, pred in predictions.items():
            if task.probabilities is None:
                value = float(np.corrcoef(pred, task.gold)[0, 1])
                out.setdefault(name, {})[f"{task.spec.name}_pearson"] = value
            else:
                out.setdefault(name, {})[f"{task.spec.name}_acc"] = float(np.mean(pred == task.gold))
    for scores in out.values():
        normalised = [(v + 1) / 2 if k.endswith("_pearson") else v for k, v in scores.items()]
        scores["overall"] = float(np.mean(normalised))
    return out


def curves(names: list[str], epochs: int = 3) -> dict[str, Curve]:
    steps = np.arange(epochs, dtype=float)
    return {n: Curve(steps, np.linspace(1, 0.5, epochs) + k / 10) for k, n in enumerate(names)}
