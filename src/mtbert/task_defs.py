"""Task definitions: what ``params.yaml``'s ``task_defs.<name>`` holds, validated.

A :class:`TaskDef` names a kind of :data:`mtbert.tasks.KINDS` and says where the task's data is and what its label
looks like; the kind supplies the rest. Each check raises ``ValueError("<key>: <problem>")``, which the typed config
(:mod:`mtbert._typed`) turns into one line naming ``task_defs.<name>.<key>``. A saved model keeps its tasks'
definitions (:meth:`TaskDef.as_dict`) and rebuilds them with the same checks.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from mtbert.tasks import KINDS, SPLITS, KindName


def _file_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


@dataclass(frozen=True)
class SplitFiles:
    """A task's raw files in ``data.raw_dir``: file names, not paths (the test file has no label column)."""

    train: str
    dev: str
    test: str

    def __post_init__(self) -> None:
        for split in SPLITS:
            if not _file_name(getattr(self, split)):
                raise ValueError(f"{split}: expected a file name in data.raw_dir, got {getattr(self, split)!r}")
        if len({self.train, self.dev, self.test}) != 3:
            raise ValueError(
                f"train: the three splits need three files, got {self.train!r}, {self.dev!r}, {self.test!r}"
            )


@dataclass(frozen=True)
class LabelDef:
    """The label column and its range; classification labels are the integers ``min .. max`` with ``min`` 0."""

    column: str
    min: float
    max: float

    def __post_init__(self) -> None:
        if not self.column:
            raise ValueError("column: expected a column name, got ''")
        for key in ("min", "max"):
            if not math.isfinite(getattr(self, key)):
                raise ValueError(f"{key}: expected a finite number, got {getattr(self, key)}")
        if self.min >= self.max:
            raise ValueError(f"min: expected min < max, got min {self.min}, max {self.max}")


@dataclass(frozen=True)
class TaskDef:
    """One task as ``params.yaml`` describes it (``task_defs.<name>``); docs/configuration.md lists every key.

    Parameters:
        kind: one of :data:`KINDS`.
        files: its train, dev and test files.
        text_columns: one column (``classification``) or two (the pair kinds).
        label: the label column and range: classes ``0 .. max`` (``pair-classification``: 0 and 1), or scores in
            ``[min, max]`` that the prediction is clamped to (``pair-regression``; ``max`` also scales the cosine).
        class_names: a classification's class labels by index (``[]``: the indices); ``[]`` for a score.
        rules: the ensemble rules the task allows, the first is the default.
        leaderboard_column: the prediction column of the leaderboard file ``<name>-<split>-output.csv``.
    """

    kind: KindName
    files: SplitFiles
    text_columns: tuple[str, ...]
    label: LabelDef
    class_names: tuple[str, ...]
    rules: tuple[str, ...]
    leaderboard_column: str

    def __post_init__(self) -> None:
        kind = KINDS[self.kind]
        if len(self.text_columns) != kind.sentences or len(set(self.text_columns)) != kind.sentences:
            wanted = f"{kind.sentences} distinct column(s)"
            raise ValueError(f"text_columns: a {self.kind} task reads {wanted}, got {list(self.text_columns)}")
        if not all(self.text_columns) or self.label.column in self.text_columns:
            raise ValueError(
                f"text_columns: expected non-empty names other than the label's, got {list(self.text_columns)}"
            )
        if kind.integer and self.label.min != 0:
            raise ValueError(
                f"label.min: a {self.kind} task's classes are 0 .. max, so min must be 0, got {self.label.min}"
            )
        if kind.integer and not float(self.label.max).is_integer():
            raise ValueError(f"label.max: a {self.kind} task's classes are 0 .. max, an integer, got {self.label.max}")
        if kind.label_max is not None and self.label.max != kind.label_max:
            raise ValueError(
                f"label.max: a {self.kind} task's labels are 0 and 1, so max must be 1, got {self.label.max}"
            )
        if self.class_names and not self.classes:
            raise ValueError(
                f"class_names: a {self.kind} task has no classes, expected [], got {list(self.class_names)}"
            )
        if self.class_names and len(self.class_names) != self.classes:
            raise ValueError(
                f"class_names: expected {self.classes} names (one per class) or [], got {len(self.class_names)}"
            )
        if not self.rules or len(set(self.rules)) != len(self.rules):
            raise ValueError(f"rules: expected a non-empty list of distinct rules, got {list(self.rules)}")
        for rule in self.rules:
            if rule not in kind.rules:
                raise ValueError(
                    f"rules: {rule!r} is not a rule of a {self.kind} task; allowed: {', '.join(kind.rules)}"
                )
        if not self.leaderboard_column:
            raise ValueError("leaderboard_column: expected a column name, got ''")

    @property
    def classes(self) -> int:
        return int(self.label.max) + 1 if KINDS[self.kind].integer else 0

    def as_dict(self) -> dict:
        """The definition as ``params.yaml`` writes it (lists, plain numbers): saved with a model."""
        return json_ready(dataclasses.asdict(self))


def json_ready(value: object) -> object:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    return [json_ready(v) for v in value] if isinstance(value, list | tuple) else value
