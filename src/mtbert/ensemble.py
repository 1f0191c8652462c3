"""Members' prediction files for the ensemble: reading and validating ``id,prediction`` tables, and aligning them.

How the aligned predictions are combined is each task's rule (:mod:`mtbert.combine`, named by its
:class:`~mtbert.tasks.TaskSpec`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from mtbert.errors import DataError


def read_predictions(path: Path, integer: bool) -> tuple[list[str], np.ndarray]:
    """Read and validate an ``id,prediction`` file; every problem names the file, line and field."""
    if not path.is_file():
        raise DataError.at(path, problem="prediction file not found (did the predict stage run for this member?)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError.at(path, problem=f"not UTF-8 ({err.reason} at byte {err.start})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0] != ["id", "prediction"]:
        raise DataError.at(
            path,
            1,
            problem=f"expected header 'id,prediction', found {','.join(rows[0]) if rows else 'nothing'!r}",
        )
    ids, values, seen = [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise DataError.at(path, line, problem=f"expected 2 fields, found {len(row)}")
        pid, raw = row
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
        ids.append(pid)
        values.append(value)
    if not ids:
        raise DataError.at(path, problem="no predictions (header only)")
    return ids, np.asarray(values)


def align(members: dict[str, tuple[list[str], np.ndarray]], files: dict[str, Path]) -> tuple[list[str], np.ndarray]:
    """Stack members' predictions into [M, N], checking that every member predicted the same ids in order."""
    names = list(members)
    ids = members[names[0]][0]
    for name in names[1:]:
        other = members[name][0]
        if other == ids:
            continue
        bad = next((i for i, (a, b) in enumerate(zip(ids, other, strict=False)) if a != b), min(len(ids), len(other)))
        theirs = other[bad] if bad < len(other) else "end of file"
        ours = ids[bad] if bad < len(ids) else "end of file"
        problem = f"ids differ from member {names[0]!r} ({files[names[0]]}): {theirs!r} vs {ours!r}"
        raise DataError.at(files[name], bad + 2, "id", problem=problem)
    return ids, np.stack([members[n][1] for n in names])
