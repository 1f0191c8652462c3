"""Dev statistics of the report: percentile bootstrap intervals, confusion matrices, accuracy against a threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Metric = Callable[[np.ndarray, np.ndarray], float]
LEVEL = 0.95


def bootstrap_indices(n: int, resamples: int, seed: int | Sequence[int]) -> np.ndarray:
    """[resamples, n] row indices drawn with replacement; the same seed gives the same resamples."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap_samples(metric: Metric, pred: np.ndarray, gold: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The metric on each resample (row of ``indices``), as the metric scores it (a nan is left out of the interval)."""
    with np.errstate(all="ignore"):
        return np.asarray([metric(pred[rows], gold[rows]) for rows in indices], dtype=float)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of the finite ``samples`` (Efron's percentile bootstrap)."""
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_interval(
    metric: Metric, pred: np.ndarray, gold: np.ndarray, resamples: int, seed: int, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(pred, gold)`` over the examples."""
    indices = bootstrap_indices(len(gold), resamples, seed)
    return percentile_interval(bootstrap_samples(metric, pred, gold, indices), level)


def confusion_matrix(pred: np.ndarray, gold: np.ndarray, classes: int) -> np.ndarray:
    """[classes, classes] counts: row = gold class, column = predicted class."""
    counts = np.zeros((classes, classes), dtype=int)
    np.add.at(counts, (gold.astype(int), pred.astype(int)), 1)
    return counts


def threshold_curve(p_positive: np.ndarray, gold: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy of predicting 1 where ``p_positive > t``, for each threshold ``t`` (the model's own rule is t = 0.5,
    a logit above 0)."""
    predicted = p_positive[None, :] > thresholds[:, None]
    return (predicted == gold[None, :].astype(bool)).mean(axis=1)
