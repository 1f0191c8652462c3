"""Tests for mtbert.report.table: the metrics table's paired percentile bootstrap intervals, per task and overall,
against a hand computation on the same resamples and against their coverage of a known truth."""

from __future__ import annotations

import numpy as np
import pytest
from _report_data import MEMBERS, make_task
from _tasks import TASKS

from mtbert.report.sources import TaskDev
from mtbert.report.stats import bootstrap_indices
from mtbert.report.table import intervals


def test_each_interval_is_the_central_95_percent_of_the_resampled_metric():
    """By hand on the same resamples (task t draws with seed (seed, t)): accuracy per resample, numpy's percentiles
    2.5 and 97.5; overall: the mean over tasks of each resample's normalised metric, then the same percentiles."""
    tasks = [make_task("sst", n=30, seed=1), make_task("sts", n=25, seed=2)]
    out = intervals(tasks, resamples=300, seed=5)
    per_resample = []
    for t, task in enumerate(tasks):
        rows = bootstrap_indices(len(task.gold), 300, (5, t))
        pred, gold = task.votes[1][rows], task.gold[rows]  # the second member
        if task.probabilities is None:
            values = np.array([np.corrcoef(p, g)[0, 1] for p, g in zip(pred, gold, strict=True)])
            per_resample.append((values + 1) / 2)
        else:
            values = (pred == gold).mean(axis=1)
            per_resample.append(values)
        key = f"{task.spec.name}_{task.spec.metric_name}"
        assert out[MEMBERS[1]][key] == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), rel=1e-12)
    expected = np.percentile(np.mean(per_resample, axis=0), [2.5, 97.5])
    assert out[MEMBERS[1]]["overall"] == pytest.approx(tuple(expected), rel=1e-12)


def coin_task(p: float, n: int, rng: np.random.Generator) -> TaskDev:
    """A binary task whose members are right with probability ``p`` on each of ``n`` examples."""
    spec = TASKS["para"]
    gold = rng.integers(0, 2, n).astype(float)
    votes = np.where(rng.random((len(MEMBERS), n)) < p, gold, 1 - gold)
    probabilities = np.stack([1 - votes, votes], axis=-1)
    texts = {c: [""] * n for c in spec.text_columns}
    return TaskDev(spec, [str(i) for i in range(n)], texts, gold, list(MEMBERS), votes, probabilities, votes[0])


def test_the_intervals_cover_the_true_accuracy_about_95_percent_of_the_time():
    """100 data sets of 100 examples from members right 80% of the time: the task's and the overall interval hold
    0.8 in 88-99% of them (a min-max interval would hold it every time, a (0, 1) one too), and are about
    ±1.96 √(0.8 · 0.2 / 100) = ±0.078 wide. Deterministic (fixed seeds)."""
    rng = np.random.default_rng(0)
    covered = {"para_acc": 0, "overall": 0}
    widths = []
    for trial in range(100):
        out = intervals([coin_task(0.8, 100, rng)], resamples=100, seed=trial)["ensemble"]
        for key in covered:
            low, high = out[key]
            covered[key] += low <= 0.8 <= high
        widths.append(out["para_acc"][1] - out["para_acc"][0])
    for key, hits in covered.items():
        assert 88 <= hits <= 99, (key, hits)
    assert 0.13 < np.mean(widths) < 0.18


def test_check_matches_allows_1e_6_absolute_and_names_a_missing_model():
    """The recorded metrics may differ from the dev predictions' by float32 label rounding (up to 1e-6, at any
    scale), no more; a model with no recorded metrics is named like a stale value."""
    from mtbert.errors import DataError
    from mtbert.report.table import check_matches

    check_matches({"m": {"sst_acc": 0.75}}, {"m": {"sst_acc": 0.75 + 5e-7}}, "metrics.json")
    with pytest.raises(DataError) as info:
        check_matches({"m": {"sts_pearson": 100.0}}, {"m": {"sts_pearson": 100.0005}}, "metrics.json")
    assert str(info.value) == "metrics.json: m.sts_pearson is 100.0005, the dev predictions give 100.0"
    with pytest.raises(DataError) as info:
        check_matches({"m": {"sst_acc": 0.75}}, {"other": {"sst_acc": 0.75}}, "metrics.json")
    assert str(info.value) == "metrics.json: m.sst_acc is None, the dev predictions give 0.75"
