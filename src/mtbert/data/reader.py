"""Reader for the CS224N minBERT data files.

Format: tab-separated UTF-8, a header row whose first column is unnamed (a running index), then one record
per physical line. Fields may be quoted with ``"`` (CSV quoting, ``""`` for a quote inside a quoted field).

Each physical line is parsed on its own (a record never spans lines, so line numbers are exact); reading,
splitting and diagnosing broken quoting live in :mod:`mtbert.data._tsv`, this module checks the header, the
records and their values.

Problems come in three kinds:

* file-level (missing, unreadable, empty, not UTF-8, bad header, no records): always a :class:`DataError`;
* malformed rows (wrong number of fields, broken quoting, a tab or line break inside a quoted field, an
  empty label, a missing id): skipped and reported (``on_malformed="skip"``) or a :class:`DataError`
  (``on_malformed="error"``);
* invalid values in a well-formed row (label not a number, out of range or not an integer, an empty
  sentence, a duplicate id): always a :class:`DataError`.

A ``DataError`` reads ``<file>:<line>: <field>: <problem>``; a skipped row's ``reason`` is
``<field>: <problem>``, so ``f"{path}:{row.line}: {row.reason}"`` has the same shape.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mtbert.data._tsv import Malformed, quote_hint, read_lines, split_line, split_record, wrong_count
from mtbert.errors import DataError

log = logging.getLogger(__name__)

ID_COLUMN = "id"
INDEX_COLUMN = ""  # the unnamed running-index column (pandas' index), allowed and ignored
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class LabelRule:
    """How a label column is validated and parsed: a number in ``[low, high]``, an integer if ``integer``.

    Integer labels may be written ``"3"`` or ``"3.0"``; they are returned as floats either way.
    """

    column: str
    low: float
    high: float
    integer: bool = False


@dataclass(frozen=True)
class SkippedRow:
    """A malformed row left out: its 1-based physical line and ``"<field>: <problem>"``."""

    line: int
    reason: str


@dataclass(frozen=True)
class Table:
    """The records of one file, in file order (malformed rows left out and listed in ``skipped``)."""

    path: Path
    ids: list[str]
    texts: dict[str, list[str]]  # column name -> stripped values, in file order
    labels: list[float] | None  # None when read without a label rule (test files)
    skipped: list[SkippedRow]

    def __len__(self) -> int:
        return len(self.ids)

    def skip_report(self) -> list[str]:
        """One line per skipped row: ``<file>:<line>: <field>: <problem>``."""
        return [f"{self.path}:{row.line}: {row.reason}" for row in self.skipped]


def read_table(
    path: Path | str,
    text_columns: Sequence[str],
    label: LabelRule | None,
    on_malformed: Literal["skip", "error"] = "skip",
) -> Table:
    """Read one data file; see the module docstring for the rules.

    ``text_columns`` are the sentence columns (stripped of surrounding whitespace, never empty); ``label``
    is ``None`` for files without a label column. The header must hold exactly ``id``, the text columns
    and the label column (any order), plus optionally the unnamed index column.
    """
    path = Path(path)
    text_columns = tuple(text_columns)
    _check_arguments(text_columns, label, on_malformed)

    lines = read_lines(path)
    if not lines or not lines[0].strip():
        raise DataError.at(path, problem="file is empty (no header line)")

    header = _parse_header(path, lines[0], text_columns, label)
    n_fields = len(header)
    col = {name: i for i, name in enumerate(header)}
    id_col = col[ID_COLUMN]
    text_cols = [(name, col[name]) for name in text_columns]
    label_col = col[label.column] if label is not None else None

    # Blank lines at the end of the file are ignored; a blank line before a record is malformed.
    last = len(lines) - 1
    while last > 0 and not lines[last].strip():
        last -= 1
    if last == 0:
        raise DataError.at(path, problem="no records after the header line")

    ids: list[str] = []
    texts: dict[str, list[str]] = {name: [] for name in text_columns}
    labels: list[float] | None = [] if label is not None else None
    skipped: list[SkippedRow] = []
    first_seen: dict[str, int] = {}

    for lineno in range(2, last + 2):
        line = lines[lineno - 1]
        try:
            fields = split_record(line, header)
            if len(fields) != n_fields:
                raise wrong_count(fields, header)
            record_id = fields[id_col].strip()
            if not record_id:
                raise Malformed(ID_COLUMN, "missing id")
            raw_label = fields[label_col].strip() if label_col is not None else ""
            if label is not None and not raw_label:
                raise Malformed(label.column, "empty label" + quote_hint(fields, header))
        except Malformed as bad:
            if on_malformed == "error":
                raise DataError.at(path, lineno, bad.field, problem=bad.problem) from None
            skipped.append(SkippedRow(lineno, str(bad)))
            continue

        # A well-formed record: invalid values are errors whatever the policy.
        if record_id in first_seen:
            raise DataError.at(
                path,
                lineno,
                ID_COLUMN,
                problem=f"duplicate id {record_id!r} (first seen on line {first_seen[record_id]})",
            )
        values = []
        for name, i in text_cols:
            value = fields[i].strip()
            if not value:
                raise DataError.at(path, lineno, name, problem="empty sentence")
            values.append(value)
        if label is not None:
            assert labels is not None
            labels.append(_parse_label(path, lineno, label, raw_label))
        first_seen[record_id] = lineno
        ids.append(record_id)
        for (name, _), value in zip(text_cols, values, strict=True):
            texts[name].append(value)

    if not ids:
        raise DataError.at(
            path,
            problem=f"no valid records: all {len(skipped)} rows are malformed "
            f"(first: line {skipped[0].line}: {skipped[0].reason})",
        )
    if skipped:
        where = ", ".join(str(row.line) for row in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        log.warning("%s: skipped %d malformed row(s) (lines %s)", path, len(skipped), where)
    return Table(path=path, ids=ids, texts=texts, labels=labels, skipped=skipped)


def header_columns(path: Path | str) -> list[str]:
    """The column names in a data file's header line, stripped (to tell whether an optional label column is there);
    file-level problems are a :class:`DataError` as in :func:`read_table`."""
    path = Path(path)
    lines = read_lines(path)
    if not lines or not lines[0].strip():
        raise DataError.at(path, problem="file is empty (no header line)")
    try:
        return [name.strip() for name in split_line(lines[0])]
    except csv.Error as err:
        raise DataError.at(path, 1, "header", problem=f"broken quoting ({err})") from None


def _check_arguments(text_columns: tuple[str, ...], label: LabelRule | None, on_malformed: str) -> None:
    """Programming errors (not the user's data): ``ValueError``."""
    if on_malformed not in ("skip", "error"):
        raise ValueError(f"on_malformed must be 'skip' or 'error', got {on_malformed!r}")
    if not text_columns:
        raise ValueError("text_columns must name at least one column")
    names = [ID_COLUMN, *text_columns] + ([label.column] if label is not None else [])
    if len(set(names)) != len(names) or INDEX_COLUMN in names:
        raise ValueError(f"columns must be distinct, non-empty and not {ID_COLUMN!r}: {names}")
    if label is not None and not label.low <= label.high:
        raise ValueError(f"label rule {label}: low > high")


def _parse_header(path: Path, line: str, text_columns: tuple[str, ...], label: LabelRule | None) -> list[str]:
    try:
        fields = split_line(line)
    except csv.Error as err:
        raise DataError.at(path, 1, "header", problem=f"broken quoting ({err})") from None
    header = [name.strip() for name in fields]
    expected = [ID_COLUMN, *text_columns] + ([label.column] if label is not None else [])
    found = "found " + ", ".join(repr(name) for name in header)
    want = "expected " + ", ".join(repr(name) for name in ["", *expected])

    def bad(problem: str) -> DataError:
        return DataError.at(path, 1, "header", problem=f"{problem} ({found}; {want})")

    missing = [name for name in expected if name not in header]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise bad(f"missing column{plural} " + ", ".join(repr(name) for name in missing))
    extra = [name for name in header if name not in expected and name != INDEX_COLUMN]
    if extra:
        plural = "s" if len(extra) > 1 else ""
        raise bad(f"unexpected column{plural} " + ", ".join(repr(name) for name in extra))
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise bad("repeated column " + ", ".join(repr(name) for name in repeated))
    return header


def _parse_label(path: Path, lineno: int, rule: LabelRule, raw: str) -> float:
    def bad(problem: str) -> DataError:
        return DataError.at(path, lineno, rule.column, problem=problem)

    if not _NUMBER.fullmatch(raw):
        raise bad(f"label {raw!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise bad(f"label {raw!r} is not a finite number")
    if rule.integer and not value.is_integer():
        raise bad(f"label {raw!r} is not an integer")
    if not rule.low <= value <= rule.high:
        raise bad(f"label {raw!r} is out of range [{rule.low:g}, {rule.high:g}]")
    return value
