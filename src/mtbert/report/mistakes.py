"""Error analysis: each task's most confidently wrong dev examples, with their sentences and every member's vote."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mtbert.files import open_atomic
from mtbert.report.sources import TaskDev


def _format(value: float, task: TaskDev) -> str:
    return str(int(value)) if task.spec.prediction_is_int else f"{value:.2f}"


def _score_name(task: TaskDev) -> str:
    return "abs_error" if task.probabilities is None else "confidence"


def most_confident_wrong(wrong: np.ndarray, confidence: np.ndarray, n: int) -> np.ndarray:
    """Indices of at most ``n`` rows where ``wrong``, by decreasing ``confidence`` (ties: the earlier row first)."""
    rows = np.flatnonzero(wrong)
    order = np.lexsort((rows, -confidence[rows]))
    return rows[order][:n]


def error_score(task: TaskDev) -> tuple[np.ndarray, np.ndarray, str]:
    """Which ensemble predictions are wrong, how sure the ensemble was, and the name of that score.

    A classification task's confidence is the members' mean probability of the class the ensemble predicted; for
    a score (STS) every prediction misses by something, and the largest absolute errors come first."""
    if task.probabilities is None:
        error = np.abs(task.ensemble - task.gold)
        return np.ones(len(task.gold), dtype=bool), error, _score_name(task)
    mean = task.probabilities.mean(axis=0)
    confidence = mean[np.arange(len(task.gold)), task.ensemble.astype(int)]
    return task.ensemble != task.gold, confidence, _score_name(task)


def error_rows(task: TaskDev, n: int) -> list[dict[str, str]]:
    """The ``n`` most confidently wrong examples as table rows: id, sentences, gold, predicted, score, each vote."""
    wrong, score, score_name = error_score(task)
    rows = []
    for i in most_confident_wrong(wrong, score, n):
        row = {"id": task.ids[i]}
        row.update({column: texts[i] for column, texts in task.texts.items()})
        row["gold"] = _format(task.gold[i], task)
        row["predicted"] = _format(task.ensemble[i], task)
        row[score_name] = f"{score[i]:.3f}"
        row.update({m: _format(task.votes[k, i], task) for k, m in enumerate(task.members)})
        rows.append(row)
    return rows


def write_rows(path: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    """A CSV with header ``columns`` (written even when there are no rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def error_columns(task: TaskDev) -> list[str]:
    """The columns of :func:`error_rows`."""
    return ["id", *task.texts, "gold", "predicted", _score_name(task), *task.members]
