"""The CS224N leaderboard's submission files: ``<task>-<split>-output.csv``, written exactly as the course's
evaluation script writes them::

    id \\t Predicted_Sentiment \\n
    <id> , <value> \\n

(a tab between ``id`` and the column name, ``" , "`` between id and value, a space before every newline). The
column is each task's :attr:`~mtbert.tasks.TaskSpec.leaderboard_column`; values are formatted as in the
pipeline's own prediction files (a class index, 0/1, or a score with 6 decimals).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtbert.errors import DataError
from mtbert.files import write_text_atomic
from mtbert.predictions import finite_rows, format_prediction
from mtbert.tasks import TaskSpec


def leaderboard_text(ids: list[str], values: np.ndarray, spec: TaskSpec) -> str:
    """The whole file, header and one row per id, in the given order."""
    if len(ids) != len(values):
        raise ValueError(f"{len(values)} predictions for {len(ids)} ids")
    rows = [f"{i} , {format_prediction(v, spec)} \n" for i, v in zip(ids, values, strict=True)]
    return "".join([f"id \t {spec.leaderboard_column} \n", *rows])


def write_leaderboard(path: Path, ids: list[str], values: np.ndarray, spec: TaskSpec) -> None:
    """Write :func:`leaderboard_text` to ``path``; refuses a count mismatch or a value that is not finite."""
    if len(values) != len(ids):
        raise DataError.at(path, problem=f"refusing to write {len(values)} predictions for {len(ids)} ids")
    finite = finite_rows(np.asarray(values, dtype=float), None)
    if not finite.all():
        raise DataError.at(path, problem=f"refusing to write non-finite predictions (id {ids[np.argmin(finite)]!r})")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, leaderboard_text(ids, values, spec), newline="")
