"""Prepared data: the ``prepare`` step (read and validate every raw file, tokenize once, write token-id caches),
and reading the caches back for training and prediction.

This module joins the task definitions (:mod:`mtbert.tasks`) with the data layer (:mod:`mtbert.data`), which knows
nothing of tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from mtbert.data.encoded import (
    Batch,
    EncodedSplit,
    SpecialTokens,
    collate,
    encode_table,
    load_special_tokens,
    load_split,
    save_special_tokens,
    save_split,
)
from mtbert.data.reader import read_table
from mtbert.progress import progress as progress_bar
from mtbert.tasks import SPLITS, TaskSpec

SPECIAL_FILE = "special_tokens.json"


def cache_path(prepared_dir: Path, task: str, split: str) -> Path:
    return prepared_dir / f"{task}-{split}.safetensors"


def prepare(
    tasks: list[TaskSpec],
    raw_dir: Path,
    prepared_dir: Path,
    tokenizer,
    on_malformed: Literal["skip", "error"] = "skip",
    progress: bool = False,
) -> dict:
    """Write ``<task>-<split>.safetensors`` for every task and split; return a report of rows and skips.

    Test files have no labels; train and dev files must. Raises :class:`~mtbert.errors.DataError` on the
    first invalid file, before anything is written, so a failed prepare leaves no half-written cache.
    ``progress``: bars over the files read and the files tokenized.
    """
    tables = {}
    files = [(spec, split) for spec in tasks for split in SPLITS]
    for spec, split in progress_bar(files, progress, desc="read"):
        label = None if split == "test" else spec.label
        tables[spec.name, split] = read_table(raw_dir / spec.file_name(split), spec.text_columns, label, on_malformed)
    report: dict = {"rows": {}, "skipped": {}, "skipped_total": 0, "skipped_rows": []}
    for (task, split), table in progress_bar(tables.items(), progress, total=len(tables), desc="tokenize"):
        spec = next(t for t in tasks if t.name == task)
        save_split(encode_table(table, spec.text_columns, tokenizer), cache_path(prepared_dir, task, split))
        key = f"{task}_{split}"
        report["rows"][key] = len(table.ids)
        report["skipped"][key] = len(table.skipped)
        report["skipped_total"] += len(table.skipped)
        report["skipped_rows"] += [f"{table.path}:{row.line}: {row.reason}" for row in table.skipped]
    special = SpecialTokens(tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    save_special_tokens(special, prepared_dir / SPECIAL_FILE)
    return report


def load_prepared(prepared_dir: Path, task: str, split: str) -> EncodedSplit:
    return load_split(cache_path(prepared_dir, task, split))


def load_special(prepared_dir: Path) -> SpecialTokens:
    return load_special_tokens(prepared_dir / SPECIAL_FILE)


@dataclass(frozen=True)
class TaskData:
    """One task's spec with its prepared training and dev splits."""

    spec: TaskSpec
    train: EncodedSplit
    dev: EncodedSplit


@dataclass(frozen=True)
class TrainingData:
    """The prepared data of the tasks a run trains on, and how their batches are built."""

    tasks: dict[str, TaskData]
    special: SpecialTokens
    max_length: int

    def batch(self, task: str, rows: np.ndarray) -> Batch:
        """Training rows ``rows`` of ``task``, encoded as its head needs, padded and truncated."""
        data = self.tasks[task]
        return collate(data.train, rows, data.spec.encoding, self.special, self.max_length)

    def sizes(self) -> dict[str, int]:
        return {name: len(d.train) for name, d in self.tasks.items()}

    def lengths(self) -> dict[str, np.ndarray]:
        return {name: d.train.lengths() for name, d in self.tasks.items()}


def load_training_data(prepared_dir: Path, specs: list[TaskSpec], max_length: int) -> TrainingData:
    """The train and dev caches of ``specs`` from ``prepared_dir``."""
    tasks = {
        s.name: TaskData(s, load_prepared(prepared_dir, s.name, "train"), load_prepared(prepared_dir, s.name, "dev"))
        for s in specs
    }
    return TrainingData(tasks, load_special(prepared_dir), max_length)
