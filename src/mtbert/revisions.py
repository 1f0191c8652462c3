"""A run's dev predictions and dev labels as a revision holds them, read through a reader the caller gives (the
``mtbert compare`` command passes one that reads git and the DVC cache at a commit, a branch or an experiment),
and paired with another run's for :mod:`mtbert.compare`.

A run is what its ``params.yaml`` asks for: its tasks and ensemble members; its dev predictions are the ensemble
stage's and the members' files, its dev labels those of the prepared data (what the ensemble stage scored).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtbert.artifacts import Artifacts
from mtbert.compare import PairedTask
from mtbert.data.encoded import load_split
from mtbert.ensemble import parse_predictions
from mtbert.errors import DataError
from mtbert.tasks import TaskSpec

Reader = Callable[[str], bytes]  # a path relative to the repository → its bytes at the revision (FileNotFoundError)
ENSEMBLE = "ensemble"
LAYOUT = Artifacts(Path())


@dataclass(frozen=True)
class DevRun:
    """One revision's dev sets: per task the ids and gold labels, per model (``ensemble`` and each member) and task
    the predictions, row-aligned with the ids."""

    label: str
    specs: dict[str, TaskSpec]
    ids: dict[str, list[str]]
    gold: dict[str, np.ndarray]
    models: dict[str, dict[str, np.ndarray]]


def _read(read: Reader, label: str, path: Path, what: str) -> bytes:
    try:
        return read(path.as_posix())
    except FileNotFoundError:
        raise DataError(f"{label}: {path}: not found ({what}; did its pipeline run, and is it committed?)") from None


def _labels(read: Reader, label: str, prepared_dir: str, task: str) -> tuple[list[str], np.ndarray]:
    path = Path(prepared_dir) / f"{task}-dev.safetensors"
    data = _read(read, label, path, "the prepared dev labels")
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        copy.write_bytes(data)
        split = load_split(copy)
    if split.labels is None:
        raise DataError(f"{label}: {path}: no labels")
    return split.ids, np.asarray(split.labels, dtype=float)


def read_dev_run(
    label: str, read: Reader, specs: dict[str, TaskSpec], prepared_dir: str, members: tuple[str, ...]
) -> DevRun:
    """The dev predictions of the ensemble and of ``members`` (may be empty) and the dev labels of every task of
    ``specs``; a :class:`DataError` naming the revision and the file that is missing or does not match its ids."""
    ids, gold, models = {}, {}, {ENSEMBLE: {}, **{m: {} for m in members}}
    for task, spec in specs.items():
        ids[task], gold[task] = _labels(read, label, prepared_dir, task)
        for model in models:
            path = (
                LAYOUT.ensemble_predictions(task, "dev")
                if model == ENSEMBLE
                else LAYOUT.member_predictions(model, task, "dev")
            )
            what = "the ensemble's dev predictions" if model == ENSEMBLE else f"member {model}'s dev predictions"
            classes = 0 if model == ENSEMBLE else spec.classes  # a member's file carries its class probabilities
            data = _read(read, label, path, what)
            found = parse_predictions(data, Path(f"{label}:{path}"), spec.prediction_is_int, classes)
            if found.ids != ids[task]:
                raise DataError(f"{label}: {path}: its ids are not those of the prepared dev set of {task}")
            models[model][task] = np.asarray(found.values, dtype=float)
    return DevRun(label, specs, ids, gold, models)


def pair_runs(a: DevRun, b: DevRun, model: str = ENSEMBLE) -> list[PairedTask]:
    """``model``'s predictions of ``b`` against those of the reference ``a``, task by task; refused (one line) when
    the two runs have other tasks or other dev examples, since a paired comparison needs the same ones."""
    if list(a.specs) != list(b.specs):
        raise DataError(f"{b.label}: tasks {', '.join(b.specs)}; {a.label} has {', '.join(a.specs)}: not comparable")
    for run in (a, b):
        if model not in run.models:
            raise DataError(f"{run.label}: no member {model!r} (its ensemble.members: {', '.join(run.models)})")
    tasks = []
    for task, spec in a.specs.items():
        if a.ids[task] != b.ids[task] or not np.array_equal(a.gold[task], b.gold[task]):
            raise DataError(f"{b.label}: the dev set of {task} is not {a.label}'s (other ids or labels)")
        tasks.append(
            PairedTask(
                task,
                spec.metric_name,
                spec.metric,
                spec.normalise,
                a.gold[task],
                a.models[model][task],
                b.models[model][task],
                accuracy=spec.classes > 0,
            )
        )
    return tasks
