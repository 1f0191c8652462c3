"""What every stage shares: a clean one-line failure for user errors, and a run key for checkpoints."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import transformers

from mtbert.errors import DataError


def run(main: Callable[[], None]) -> None:
    """Call ``main``; a user-facing error becomes one line on stderr and exit status 2 (no traceback)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    transformers.logging.set_verbosity_error()  # the load report of an encoder without its pooler is noise
    try:
        main()
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def run_key(*parts: object, files: list[Path] = ()) -> str:
    """A digest of configuration objects and input files: a checkpoint resumes only under the same key."""
    h = hashlib.sha256()
    for part in parts:
        h.update(
            json.dumps(
                asdict(part) if hasattr(part, "__dataclass_fields__") else part, sort_keys=True, default=str
            ).encode()
        )
    for path in files:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
