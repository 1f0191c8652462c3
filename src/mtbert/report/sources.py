"""What the report reads: training curves (dvclive ``.tsv`` files) and each task's dev predictions joined with the
dev examples' sentences and gold labels."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from mtbert.data.reader import read_table
from mtbert.ensemble import align, read_predictions
from mtbert.errors import DataError
from mtbert.tasks import TaskSpec


@dataclass(frozen=True)
class Curve:
    """One logged value per epoch: ``steps`` [E] and ``values`` [E]."""

    steps: np.ndarray
    values: np.ndarray


def read_curve(path: Path) -> Curve:
    """A dvclive ``<name>.tsv`` file: columns ``step`` and ``<name>`` (others, e.g. a timestamp, are ignored)."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or "step" not in rows[0] or path.stem not in rows[0]:
        raise DataError.at(path, 1, problem=f"expected the columns 'step' and {path.stem!r}")
    step, value = rows[0].index("step"), rows[0].index(path.stem)
    try:
        pairs = [(float(r[step]), float(r[value])) for r in rows[1:] if r]
    except (ValueError, IndexError):
        raise DataError.at(path, problem="expected numbers in every row") from None
    data = np.asarray(pairs, dtype=float).reshape(-1, 2)
    return Curve(data[:, 0], data[:, 1])


def read_curves(folder: Path) -> dict[str, Curve]:
    """Every ``<name>.tsv`` directly in ``folder``, by name (empty when the folder does not exist)."""
    return {p.stem: read_curve(p) for p in sorted(folder.glob("*.tsv"))}


def read_metrics(path: Path) -> dict[str, dict[str, float]]:
    """The ensemble stage's metrics file: per member and ``ensemble``, per metric key."""
    if not path.is_file():
        raise DataError.at(path, problem="metrics file not found (did the ensemble stage run?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError.at(path, err.lineno, problem=f"not valid JSON ({err.msg})") from None


@dataclass(frozen=True)
class TaskDev:
    """One task's dev examples and every prediction of them, row-aligned.

    ``texts`` maps each text column to its sentences; ``votes`` [M, N] and ``probabilities`` [M, N, C] (None for a
    regression task) are the members', in ``members`` order; ``ensemble`` [N] is the ensemble's prediction."""

    spec: TaskSpec
    ids: list[str]
    texts: dict[str, list[str]]
    gold: np.ndarray
    members: list[str]
    votes: np.ndarray
    probabilities: np.ndarray | None
    ensemble: np.ndarray


def load_task_dev(
    spec: TaskSpec,
    raw_dev: Path,
    member_files: dict[str, Path],
    ensemble_file: Path,
    on_malformed: Literal["skip", "error"] = "skip",
) -> TaskDev:
    """Read the raw dev file (as ``prepare`` read it) and the members' and the ensemble's dev predictions; every
    prediction file must hold the dev file's ids in order."""
    table = read_table(raw_dev, spec.text_columns, spec.label, on_malformed)
    members = {m: read_predictions(p, spec.prediction_is_int, spec.classes) for m, p in member_files.items()}
    stacked = align(members, member_files)
    ensemble = read_predictions(ensemble_file, spec.prediction_is_int)
    for path, ids in [(next(iter(member_files.values())), stacked.ids), (ensemble_file, ensemble.ids)]:
        if ids != table.ids:
            raise DataError.at(path, problem=f"ids differ from {raw_dev} (stale predictions? rerun the pipeline)")
    assert table.labels is not None
    return TaskDev(
        spec,
        table.ids,
        table.texts,
        np.asarray(table.labels),
        list(members),
        stacked.values,
        stacked.probabilities,
        ensemble.values,
    )
