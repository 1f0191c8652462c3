"""Tests for mtbert.report.mistakes: the most confidently wrong examples, in order, with every member's vote."""

from __future__ import annotations

import csv

import numpy as np
from _report_data import MEMBERS, make_task

from mtbert.report.mistakes import error_columns, error_rows, most_confident_wrong, write_rows


def test_most_confident_wrong_orders_by_confidence_then_row():
    wrong = np.array([True, False, True, True, True, True])
    confidence = np.array([0.6, 0.99, 0.9, 0.6, 0.7, 0.1])
    assert most_confident_wrong(wrong, confidence, 10).tolist() == [2, 4, 0, 3, 5]  # row 1 is right; 0 before 3
    assert most_confident_wrong(wrong, confidence, 2).tolist() == [2, 4]
    everything_wrong = np.ones_like(wrong)
    assert most_confident_wrong(everything_wrong, confidence, 0).tolist() == []  # n = 0: none, though all are wrong
    assert most_confident_wrong(everything_wrong, confidence, 3).tolist() == [1, 2, 4]


def test_classification_errors_are_wrong_and_sorted_by_the_members_mean_probability():
    task = make_task("sst", n=60)
    rows = error_rows(task, 5)
    assert len(rows) == 5
    mean = task.probabilities.mean(axis=0)
    confidences = [float(r["confidence"]) for r in rows]
    assert confidences == sorted(confidences, reverse=True)
    wrong = np.flatnonzero(task.ensemble != task.gold)
    best = max(mean[i, int(task.ensemble[i])] for i in wrong)
    assert float(rows[0]["confidence"]) == round(best, 3)
    for row in rows:
        i = task.ids.index(row["id"])
        assert row["gold"] != row["predicted"]
        assert row["sentence"] == task.texts["sentence"][i]
        assert [row[m] for m in MEMBERS] == [str(int(v)) for v in task.votes[:, i]]
    assert list(rows[0]) == error_columns(task)


def test_score_errors_are_the_largest_absolute_errors(tmp_path):
    task = make_task("sts", n=30)
    rows = error_rows(task, 3)
    errors = np.abs(task.ensemble - task.gold)
    assert [r["id"] for r in rows] == [task.ids[i] for i in np.argsort(-errors)[:3]]
    assert list(rows[0])[:3] == ["id", "sentence1", "sentence2"]
    path = tmp_path / "errors-sts.csv"
    write_rows(path, rows, error_columns(task))
    with path.open(newline="") as f:
        read = list(csv.DictReader(f))
    assert read == rows
