"""Physical lines of a minBERT data file: reading and decoding, splitting into fields, broken quoting.

Each physical line is parsed on its own with :mod:`csv` (``strict=True``), so a record never spans lines: a
field whose quote is never closed cannot swallow the following (good) rows, and line numbers are exact.
Lines without any ``"`` take a fast path (a plain split on tabs, which is what :mod:`csv` would return).

File-level problems raise :class:`DataError`; a malformed row raises :class:`Malformed`, which
:func:`mtbert.data.reader.read_table` skips or turns into a ``DataError`` depending on its policy.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mtbert.errors import DataError

_BOM = "\ufeff"


class Malformed(Exception):
    """A malformed row: ``field`` names the column (or ``"record"``), ``problem`` says what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def read_lines(path: Path) -> list[str]:
    """The file's physical lines (``\\n`` or ``\\r\\n``), decoded, BOM removed, line ends stripped."""
    if path.is_dir():
        raise DataError.at(path, problem="is a directory, not a data file")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError.at(path, problem="file not found") from None
    except PermissionError:
        raise DataError.at(path, problem="cannot read file: permission denied") from None
    except OSError as err:
        raise DataError.at(path, problem=f"cannot read file: {err.strerror or err}") from None
    if not raw:
        raise DataError.at(path, problem="file is empty (0 bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _decode_error(path, raw, err) from None
    if text.startswith(_BOM):
        text = text[1:]
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _decode_error(path: Path, raw: bytes, err: UnicodeDecodeError) -> DataError:
    lineno = raw.count(b"\n", 0, err.start) + 1
    line_start = raw.rfind(b"\n", 0, err.start) + 1
    column = raw.count(b"\t", line_start, err.start)
    field = None
    if lineno > 1:  # name the column from the header (approximate if a quoted field holds a tab)
        header = raw.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip(_BOM).rstrip("\r").split("\t")
        if column < len(header) and header[column].strip():
            field = header[column].strip()
    byte = raw[err.start : err.start + 1].hex()
    return DataError.at(
        path,
        lineno,
        field,
        problem=f"not valid UTF-8 (byte 0x{byte} at byte {err.start - line_start + 1} of the line)",
    )


def split_line(line: str) -> list[str]:
    """The fields of one physical line; ``csv.Error`` for broken quoting."""
    if '"' not in line and "\r" not in line:
        return line.split("\t")
    return next(csv.reader([line], delimiter="\t", quotechar='"', doublequote=True, strict=True))


def split_record(line: str, header: list[str]) -> list[str]:
    """The fields of one record line; :class:`Malformed` for a blank line or broken quoting."""
    if not line.strip():
        raise Malformed("record", "blank line")
    try:
        fields = split_line(line)
    except csv.Error as err:
        column, problem = _locate_quote_problem(line) or (None, f"cannot parse the line ({err})")
        raise Malformed(_column_name(header, column), problem) from None
    for i, value in enumerate(fields):
        for char, what in (("\t", "a tab"), ("\n", "a line break"), ("\r", "a carriage return")):
            if char in value:
                raise Malformed(_column_name(header, i), f"broken quoting: quoted field holds {what}")
    return fields


def _locate_quote_problem(line: str) -> tuple[int, str] | None:
    """Where (column index) and why :mod:`csv` (strict) rejects a line."""
    column, i, n = 0, 0, len(line)
    while True:
        if i < n and line[i] == '"':
            j = i + 1
            while True:
                k = line.find('"', j)
                if k < 0:
                    return column, "broken quoting: a quoted field is never closed (no closing '\"')"
                if line.startswith('"', k + 1):
                    j = k + 2
                    continue
                break
            i = k + 1
            if i < n and line[i] != "\t":
                return column, "broken quoting: text after the closing '\"' of a quoted field"
        else:
            k = line.find("\t", i)
            k = n if k < 0 else k
            if "\r" in line[i:k]:
                return column, "stray carriage return (\\r) inside the line"
            i = k
        if i >= n:
            return None
        i += 1
        column += 1


def _column_name(header: list[str], column: int | None) -> str:
    if column is None or column >= len(header):
        return "record"
    return header[column] or f"column {column + 1}"


def wrong_count(fields: list[str], header: list[str]) -> Malformed:
    """The :class:`Malformed` for a record whose number of fields differs from the header's."""
    problem = f"expected {len(header)} tab-separated fields, found {len(fields)}"
    if len(fields) < len(header):
        return Malformed(header[len(fields)] or "record", f"missing field: {problem}" + quote_hint(fields, header))
    return Malformed("record", f"too many fields: {problem}")


def quote_hint(fields: list[str], header: list[str]) -> str:
    """A hint for rows whose quoting went wrong: a field with an unmatched literal ``"``."""
    for name, value in zip(header, fields, strict=False):
        if value.count('"') % 2:
            shown = name or "index"
            return f" (broken quoting? field {shown!r} has an unmatched '\"')"
    return ""
