"""What every stage script shares: the params, one-line errors with exit status 2, metrics files.

This is the stage layer (it reads ``params.yaml`` and writes files); the library under ``src/mtbert`` never does.
Training stages also use :mod:`_train`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import transformers

from mtbert.artifacts import Artifacts
from mtbert.checks import check_machine
from mtbert.config import Config, DistConfig, load_config
from mtbert.errors import ConfigError, DataError

PARAMS = "params.yaml"
ARTIFACTS = Artifacts()


def run(main: Callable[[Config], None], distributed: bool = False) -> None:
    """Load the params and call ``main``; a user-facing error becomes one line on stderr and exit status 2.
    ``distributed``: a training stage, run under ``torchrun`` when ``dist`` asks for more than one process."""
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s", stream=sys.stdout)
    transformers.logging.set_verbosity_error()  # the load report of an encoder without its pooler is noise
    try:
        cfg = load_config(PARAMS)
        check_machine(cfg)  # the model, devices and precisions the params name exist here
        if distributed and cfg.dist.world_size > 1 and "LOCAL_RANK" not in os.environ:
            launch(cfg.dist)  # does not return
        main(cfg)
    except DataError as err:
        message = str(err)
        if isinstance(err, ConfigError) and not message.startswith(PARAMS):
            message = f"{PARAMS}: {message}"  # a recipe's error names the key; the user also needs the file
        if rank == 0:
            print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def launch(dist: DistConfig) -> None:
    """Become ``torchrun`` running this script (same arguments) in ``dist.nproc`` processes on this machine: the
    stage's process is then the launcher, so a signal that stops the stage stops every worker. On the CPU each
    process gets an equal share of the cores unless ``OMP_NUM_THREADS`` is set."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // dist.nproc)))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={dist.nproc}",
        f"--nnodes={dist.nnodes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={dist.rdzv_endpoint}",
        f"--rdzv-id={dist.rdzv_id}",
        sys.argv[0],
        *sys.argv[1:],
    ]
    print(f"launching {dist.world_size} processes: {' '.join(command[1:])}", flush=True)
    os.execve(sys.executable, command, env)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
