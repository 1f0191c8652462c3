"""Members' prediction files for the ensemble: reading and validating ``id,prediction[,p_0,…]`` tables, aligning
them, choosing members (all, or greedy forward selection on dev) and combining them by the task's rule
(:mod:`mtbert.combine`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mtbert.combine import RULES
from mtbert.errors import DataError
from mtbert.predictions import probability_columns


class Predictions(NamedTuple):
    """One file's, or several members' aligned, predictions: ``values`` [N] or [M, N]; ``probabilities``
    [N, C] or [M, N, C] for a classification task, else None."""

    ids: list[str]
    values: np.ndarray
    probabilities: np.ndarray | None


def read_predictions(path: Path, integer: bool, classes: int = 0) -> Predictions:
    """Read and validate an ``id,prediction`` file (``classes > 0``: followed by the columns ``p_0 … p_<C-1>``, class
    probabilities summing to 1); every problem names the file, line and field."""
    if not path.is_file():
        raise DataError.at(path, problem="prediction file not found (did the predict stage run for this member?)")
    return parse_predictions(path.read_bytes(), path, integer, classes)


def parse_predictions(data: bytes, path: Path, integer: bool, classes: int = 0) -> Predictions:
    """:func:`read_predictions` of a file's bytes (read from a git or DVC revision, say); ``path`` names it."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError.at(path, problem=f"not UTF-8 ({err.reason} at byte {err.start})") from None
    rows = list(csv.reader(text.splitlines()))
    header = ["id", "prediction", *probability_columns(classes)]
    if not rows or rows[0] != header:
        raise DataError.at(
            path,
            1,
            problem=f"expected header {','.join(header)!r}, found {','.join(rows[0]) if rows else 'nothing'!r}",
        )
    ids, values, probabilities, seen = [], [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError.at(path, line, problem=f"expected {len(header)} fields, found {len(row)}")
        pid, raw = row[:2]
        if not pid:
            raise DataError.at(path, line, "id", problem="empty id")
        if pid in seen:
            raise DataError.at(path, line, "id", problem=f"duplicate id {pid!r} (first on line {seen[pid]})")
        seen[pid] = line
        try:
            value = float(raw)
        except ValueError:
            raise DataError.at(path, line, "prediction", problem=f"not a number: {raw!r}") from None
        if not math.isfinite(value) or (integer and value != int(value)):
            raise DataError.at(
                path,
                line,
                "prediction",
                problem=f"expected {'an integer' if integer else 'a finite number'}, found {raw!r}",
            )
        if classes:
            probabilities.append(_probabilities(path, line, header[2:], row[2:]))
        ids.append(pid)
        values.append(value)
    if not ids:
        raise DataError.at(path, problem="no predictions (header only)")
    return Predictions(ids, np.asarray(values), np.asarray(probabilities) if classes else None)


def _probabilities(path: Path, line: int, names: list[str], raw: list[str]) -> list[float]:
    out = []
    for name, text in zip(names, raw, strict=True):
        try:
            p = float(text)
        except ValueError:
            raise DataError.at(path, line, name, problem=f"not a number: {text!r}") from None
        if not 0 <= p <= 1:  # also refuses nan
            raise DataError.at(path, line, name, problem=f"expected a probability in [0, 1], found {text!r}")
        out.append(p)
    if abs(sum(out) - 1) > 1e-4:
        raise DataError.at(path, line, problem=f"class probabilities sum to {sum(out):.6f}, expected 1")
    return out


def align(members: dict[str, Predictions], files: dict[str, Path]) -> Predictions:
    """Stack members' predictions into [M, N] (and [M, N, C]), checking that every member predicted the same ids in
    order."""
    names = list(members)
    ids = members[names[0]].ids
    for name in names[1:]:
        other = members[name].ids
        if other == ids:
            continue
        bad = next((i for i, (a, b) in enumerate(zip(ids, other, strict=False)) if a != b), min(len(ids), len(other)))
        theirs = other[bad] if bad < len(other) else "end of file"
        ours = ids[bad] if bad < len(ids) else "end of file"
        problem = f"ids differ from member {names[0]!r} ({files[names[0]]}): {theirs!r} vs {ours!r}"
        raise DataError.at(files[name], bad + 2, "id", problem=problem)
    probabilities = [members[n].probabilities for n in names]
    stacked = None if probabilities[0] is None else np.stack(probabilities)  # type: ignore[arg-type]
    return Predictions(ids, np.stack([members[n].values for n in names]), stacked)


Metric = Callable[[np.ndarray, np.ndarray], float]


def combine(rule: str, members: Predictions, chosen: list[int]) -> np.ndarray:
    """The rule applied to the members at indices ``chosen`` (in that order: a tie of votes goes to the first)."""
    probabilities = None if members.probabilities is None else members.probabilities[chosen]
    return RULES[rule](members.values[chosen], probabilities)


def select_greedy(rule: str, dev: Predictions, labels: np.ndarray, metric: Metric) -> list[int]:
    """Forward selection on dev (Caruana et al. 2004, without replacement): start from no member, add at each step
    the member whose addition scores best (a tie goes to the member listed first), until every member is in; keep
    the shortest prefix with the best score. Deterministic; the first member chosen is the best single member, so
    the selection scores at least as well on dev as each member alone, and that dev score is optimistic."""
    chosen: list[int] = []
    scores: list[float] = []
    remaining = list(range(len(dev.values)))
    while remaining:
        score, best = max((metric(combine(rule, dev, [*chosen, m]), labels), -m) for m in remaining)
        chosen.append(-best)
        remaining.remove(-best)
        scores.append(score)
    return chosen[: scores.index(max(scores)) + 1]


@dataclass(frozen=True)
class Ensembled:
    """One task's ensemble: the indices of the members it combines (in combining order), and their combined dev
    and test predictions."""

    members: list[int]
    dev: np.ndarray
    test: np.ndarray


def ensemble_task(
    rule: str, select: str, dev: Predictions, test: Predictions, labels: np.ndarray, metric: Metric
) -> Ensembled:
    """Combine every member (``select: all``) or those :func:`select_greedy` picks on dev (``greedy``) by ``rule``."""
    members = select_greedy(rule, dev, labels, metric) if select == "greedy" else list(range(len(dev.values)))
    return Ensembled(members, combine(rule, dev, members), combine(rule, test, members))
