"""User-facing errors.

Every error a user can fix (a bad data file, a bad ``params.yaml`` key, a missing ensemble member...) is a
:class:`DataError` (or a subclass) whose ``str()`` is ONE line, so the command line can print it as is,
without a traceback::

    data/raw/quora-train.csv:1797: is_duplicate: empty label
    data/raw/x.csv: file not found
"""

from __future__ import annotations

from os import PathLike
from typing import Self


class DataError(Exception):
    """A user-facing error; ``str(err)`` is a single line.

    Build it from a ready message (``DataError("x: bad")``) or with :meth:`at`, which formats
    ``<path>:<line>: <field>: <problem>`` and keeps the parts as attributes.
    """

    def __init__(self, message: str) -> None:
        # One line, always: a stray newline (e.g. from a repr of a bad value) would break log parsing.
        message = " ".join(str(message).splitlines())
        super().__init__(message)
        self.message = message
        self.path: str | None = None
        self.line: int | None = None
        self.field: str | None = None
        self.problem: str = message

    @classmethod
    def at(
        cls,
        path: str | PathLike[str] | None,
        line: int | None = None,
        field: str | None = None,
        *,
        problem: str,
    ) -> Self:
        """``<path>:<line>: <field>: <problem>``; parts that are ``None`` are left out.

        >>> str(DataError.at("a.csv", 3, "id", problem="missing"))
        'a.csv:3: id: missing'
        >>> str(DataError.at("a.csv", problem="file not found"))
        'a.csv: file not found'
        """
        where = "" if path is None else str(path)
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        parts = [p for p in (where, field) if p]
        err = cls(": ".join([*parts, problem]))
        err.path = None if path is None else str(path)
        err.line = line
        err.field = field
        err.problem = problem
        return err

    def __str__(self) -> str:
        return self.message


class ConfigError(DataError):
    """An invalid configuration (``params.yaml``): one line naming the key and what is allowed."""


class TrainingError(DataError):
    """Training cannot go on (e.g. a NaN or infinite loss): one line naming the step and the task."""
