"""Progress bars for long loops: a tqdm bar on a terminal, the plain iterable otherwise.

The caller decides whether a bar is shown (a stage or the command line passes ``sys.stderr.isatty()``); the library
never looks at the terminal or the environment itself. A bar only reports: it draws no random numbers and changes no
result.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")


class Progress:
    """Wraps ``items`` in a bar on ``file`` (default ``sys.stderr``) when ``enabled``; iterating it yields ``items``
    unchanged either way. :meth:`note` shows a short status (e.g. running losses) beside the bar; it returns False
    when there is no bar, so the caller can log the same status as a plain line instead.

    Parameters:
        items: what to iterate over.
        enabled: draw a bar (typically ``sys.stderr.isatty()``, decided by the caller).
        total: the number of items, when ``items`` has no ``len``.
        desc: the bar's label.
        file: where the bar is drawn.
    """

    def __init__(
        self,
        items: Iterable[T],
        enabled: bool,
        total: int | None = None,
        desc: str = "",
        file: TextIO | None = None,
    ) -> None:
        self.items = items
        self.bar = (
            tqdm(items, total=total, desc=desc, file=file or sys.stderr, leave=False, dynamic_ncols=True)
            if enabled
            else None
        )

    def __iter__(self) -> Iterator[T]:
        return iter(self.bar if self.bar is not None else self.items)

    def note(self, text: str) -> bool:
        """Show ``text`` beside the bar; False (and nothing shown) when there is no bar."""
        if self.bar is None:
            return False
        self.bar.set_postfix_str(text)
        return True

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress(
    items: Iterable[T], enabled: bool, total: int | None = None, desc: str = "", file: TextIO | None = None
) -> Iterable[T]:
    """``items`` behind a bar when ``enabled``, else ``items`` itself (the same object)."""
    return Progress(items, enabled, total, desc, file) if enabled else items
