"""The metrics table: each member's and the ensemble's dev metric per task and overall, with 95% intervals.

The intervals are paired: for one task, every member and the ensemble are scored on the same bootstrap resamples of
the dev examples; the overall score of resample b combines resample b of each task, as the point value does.
"""

from __future__ import annotations

import numpy as np

from mtbert.errors import DataError
from mtbert.report.sources import TaskDev
from mtbert.report.stats import bootstrap_indices, bootstrap_samples, percentile_interval
from mtbert.tasks import overall_score

ENSEMBLE = "ensemble"
OVERALL = "overall"
Interval = tuple[float, float]


def metric_key(task: TaskDev) -> str:
    """The task's key in the metrics files, e.g. ``sst_acc``."""
    return f"{task.spec.name}_{task.spec.metric_name}"


def _predictions(task: TaskDev) -> dict[str, np.ndarray]:
    return {**{m: task.votes[k] for k, m in enumerate(task.members)}, ENSEMBLE: task.ensemble}


def point_values(tasks: list[TaskDev]) -> dict[str, dict[str, float]]:
    """Per member and ``ensemble``: each task's dev metric and ``overall`` (what ``metrics/ensemble.json`` holds)."""
    values: dict[str, dict[str, float]] = {}
    for task in tasks:
        for name, pred in _predictions(task).items():
            values.setdefault(name, {})[metric_key(task)] = task.spec.metric(pred, task.gold)
    for scores in values.values():
        scores[OVERALL] = overall_score(scores, [t.spec for t in tasks])
    return values


def intervals(tasks: list[TaskDev], resamples: int, seed: int) -> dict[str, dict[str, Interval]]:
    """Per member and ``ensemble``: the 95% percentile bootstrap interval of each value of :func:`point_values`."""
    samples: dict[str, dict[str, np.ndarray]] = {}
    for t, task in enumerate(tasks):
        indices = bootstrap_indices(len(task.gold), resamples, (seed, t))
        for name, pred in _predictions(task).items():
            samples.setdefault(name, {})[metric_key(task)] = bootstrap_samples(
                task.spec.metric, pred, task.gold, indices
            )
    out: dict[str, dict[str, Interval]] = {}
    for name, by_key in samples.items():
        normalised = [np.vectorize(t.spec.normalise)(by_key[metric_key(t)]) for t in tasks]
        overall = np.mean(normalised, axis=0)
        out[name] = {key: percentile_interval(s) for key, s in by_key.items()} | {OVERALL: percentile_interval(overall)}
    return out


def check_matches(points: dict[str, dict[str, float]], recorded: dict[str, dict[str, float]], source: str) -> None:
    """Raise a :class:`~mtbert.errors.DataError` naming the first value that differs between the predictions and
    ``source``'s (stale predictions or metrics)."""
    for name, scores in points.items():
        for key, value in scores.items():
            theirs = recorded.get(name, {}).get(key)
            # 1e-6: the ensemble stage scores against the prepared cache's float32 labels, the report against the
            # raw file's; stale files differ by far more.
            if theirs is None or not np.isclose(value, theirs, rtol=0, atol=1e-6):
                raise DataError(f"{source}: {name}.{key} is {theirs}, the dev predictions give {value}")
