"""Writing files so that nothing is ever half-written: through a temporary file beside the target, then
``os.replace`` (atomic on one file system). A process killed mid-write leaves the previous file, or no file, never a
torn one; the temporary file of a failed write is removed.

Every writer of the pipeline's outputs goes through here: checkpoints and best weights, models, prepared data,
predictions, metrics, the report's files and the leaderboard files (dvclive writes its own curve files).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temporary path)`` (e.g. ``torch.save``, ``safetensors.save_file``, ``Figure.savefig``), then move
    the result to ``path``; the folder must exist."""
    tmp = _temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def open_atomic(path: Path, mode: str = "w", **kwargs: object) -> Iterator[IO]:
    """``open(path, mode)`` whose content appears at ``path`` only when the block ends without an exception."""
    tmp = _temporary(path)
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8", newline: str | None = None) -> None:
    """``path.write_text(text)``, atomically."""
    with open_atomic(path, "w", encoding=encoding, newline=newline) as f:
        f.write(text)
