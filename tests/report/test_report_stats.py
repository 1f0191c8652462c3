"""Tests for mtbert.report.stats: percentile bootstrap intervals, confusion counts, the threshold curve."""

from __future__ import annotations

import numpy as np
import pytest
from _tasks import TASKS

from mtbert.report.stats import (
    bootstrap_indices,
    bootstrap_interval,
    bootstrap_samples,
    confusion_matrix,
    percentile_interval,
    threshold_curve,
)

ACCURACY = TASKS["sst"].metric
PEARSON = TASKS["sts"].metric


def _half_right(n: int) -> tuple[np.ndarray, np.ndarray]:
    gold = np.zeros(n)
    pred = np.where(np.arange(n) % 4 == 0, 1.0, 0.0)  # 75% right
    return pred, gold


def test_percentile_interval_of_a_known_sample():
    # numpy's linear percentile of 1..1000: 1 + 0.025 * 999 and 1 + 0.975 * 999
    assert percentile_interval(np.arange(1, 1001, dtype=float)) == pytest.approx((25.975, 975.025))
    assert percentile_interval(np.array([np.nan, 2.0, 2.0])) == (2.0, 2.0)  # undefined resamples are left out
    assert np.isnan(percentile_interval(np.array([np.nan]))).all()


def test_the_interval_contains_the_point_value_and_shrinks_with_more_examples():
    widths = []
    for n in (80, 2000):
        pred, gold = _half_right(n)
        low, high = bootstrap_interval(ACCURACY, pred, gold, resamples=1000, seed=0)
        assert low < ACCURACY(pred, gold) == 0.75 < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3  # ~ 1 / sqrt(n): 5x narrower for 25x the examples


def test_every_example_right_gives_a_point_interval():
    gold = np.arange(10) % 5.0
    assert bootstrap_interval(ACCURACY, gold.copy(), gold, resamples=200, seed=1) == (1.0, 1.0)


def test_resamples_are_seeded_draws_with_replacement():
    a, b = bootstrap_indices(50, 300, 7), bootstrap_indices(50, 300, 7)
    assert a.shape == (300, 50) and (a == b).all()
    assert not (a == bootstrap_indices(50, 300, 8)).all()
    assert a.min() >= 0 and a.max() < 50
    assert any(len(set(row)) < 50 for row in a)  # with replacement: rows repeat examples


def test_bootstrap_samples_score_each_resample():
    gold = np.array([0.0, 1.0, 2.0])
    pred = np.array([0.0, 1.0, 0.0])
    indices = np.array([[0, 1, 2], [0, 0, 0], [2, 2, 2], [0, 1, 1]])
    assert bootstrap_samples(ACCURACY, pred, gold, indices) == pytest.approx([2 / 3, 1, 0, 1])
    constant = bootstrap_samples(PEARSON, gold, gold, np.array([[0, 0, 0], [0, 1, 2]]))
    assert constant.tolist() == pytest.approx([0, 1])  # the task's metric scores a constant resample 0, as on dev


def test_confusion_matrix_counts_gold_rows_and_predicted_columns():
    gold = np.array([0, 0, 1, 2, 2, 2], dtype=float)
    pred = np.array([0, 1, 1, 2, 0, 2], dtype=float)
    expected = [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert confusion_matrix(pred, gold, 3).tolist() == expected
    assert confusion_matrix(pred, gold, 5).sum() == len(gold)


def test_threshold_curve_by_hand():
    p = np.array([0.2, 0.6, 0.9])
    gold = np.array([0.0, 1.0, 0.0])
    curve = threshold_curve(p, gold, np.array([0.0, 0.5, 0.7, 0.95]))
    # predicted 1 where p > t: [1,1,1] [0,1,1] [0,0,1] [0,0,0]
    assert curve == pytest.approx([1 / 3, 2 / 3, 1 / 3, 2 / 3])


def test_the_interval_is_the_percentiles_of_the_seeded_resamples_at_the_level_asked():
    rng = np.random.default_rng(0)
    gold, pred = rng.normal(size=60), rng.normal(size=60)

    def mean_error(p: np.ndarray, g: np.ndarray) -> float:
        return float(np.mean(p - g))  # a continuous metric: distinct resamples give distinct values

    samples = bootstrap_samples(mean_error, pred, gold, bootstrap_indices(60, 400, 5))
    assert bootstrap_interval(mean_error, pred, gold, resamples=400, seed=5) == percentile_interval(samples)
    half = bootstrap_interval(mean_error, pred, gold, resamples=400, seed=5, level=0.5)
    assert half == percentile_interval(samples, 0.5)
    low, high = percentile_interval(samples)
    assert low < half[0] < half[1] < high  # the central half lies strictly inside the central 95%


def test_confusion_matrix_counts_are_integers():
    counts = confusion_matrix(np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]), 2)
    assert counts.dtype.kind == "i"  # the figure writes str(count) in each cell: "2", not "2.0"
    assert [[str(c) for c in row] for row in counts] == [["1", "1"], ["0", "1"]]


def test_threshold_curve_predicts_1_strictly_above_the_threshold():
    # A probability equal to the threshold predicts 0 (the model's rule: a logit above 0, p(1) > 0.5).
    p = np.array([0.0, 0.5, 1.0])
    gold = np.array([0.0, 0.0, 1.0])
    # predicted: t = 0: [0, 1, 1]; t = 0.5: [0, 0, 1]; t = 1: [0, 0, 0]
    assert threshold_curve(p, gold, np.array([0.0, 0.5, 1.0])).tolist() == pytest.approx([2 / 3, 1.0, 2 / 3])
