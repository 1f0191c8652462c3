"""What every stage script shares: the params, one-line errors with exit status 2, metrics files.

This is the stage layer (it reads ``params.yaml`` and writes files); the library under ``src/mtbert`` never does.
Training stages also use :mod:`_train`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import transformers

from mtbert.artifacts import Artifacts
from mtbert.checks import check_machine
from mtbert.config import Config, load_config
from mtbert.errors import ConfigError, DataError

PARAMS = "params.yaml"
ARTIFACTS = Artifacts()


def run(main: Callable[[Config], None]) -> None:
    """Load the params and call ``main``; a user-facing error becomes one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    transformers.logging.set_verbosity_error()  # the load report of an encoder without its pooler is noise
    try:
        cfg = load_config(PARAMS)
        check_machine(cfg)  # the model, devices and precisions the params name exist here
        main(cfg)
    except DataError as err:
        message = str(err)
        if isinstance(err, ConfigError) and not message.startswith(PARAMS):
            message = f"{PARAMS}: {message}"  # a recipe's error names the key; the user also needs the file
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
