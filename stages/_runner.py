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

from mtbert.checks import check_machine
from mtbert.config import Config, DistConfig, load_config
from mtbert.errors import ConfigError, DataError
from mtbert.files import write_text_atomic

PARAMS = "params.yaml"


Argument = tuple[str, Callable[[Config, str], object]]  # a stage argument's name and its parser


def one_of(values: Callable[[Config], tuple]) -> Callable[[Config, str], object]:
    """A parser: the argument (as the type of ``values(cfg)``'s items) if it is one of them."""

    def parse(cfg: Config, text: str) -> object:
        allowed = values(cfg)
        for value in allowed:
            if str(value) == text:
                return value
        raise ValueError(f"{text!r} is not one of {', '.join(map(str, allowed))}")

    return parse


def parse_arguments(cfg: Config, arguments: tuple[Argument, ...], argv: list[str]) -> list[object]:
    """The stage's own command-line arguments, each checked against the params (a :class:`DataError` naming it)."""
    script = f"stages/{Path(sys.argv[0]).name}"
    if len(argv) != len(arguments):
        usage = "".join(f" <{name}>" for name, _ in arguments)
        raise DataError(f"usage: python {script}{usage} (got {len(argv)} argument(s))")
    values = []
    for (name, parse), text in zip(arguments, argv, strict=True):
        try:
            values.append(parse(cfg, text))
        except ValueError as err:
            raise DataError(f"{script}: {name}: {err}") from None
    return values


def run(main: Callable[..., None], distributed: bool = False, arguments: tuple[Argument, ...] = ()) -> None:
    """Load the params, parse the stage's ``arguments`` and call ``main(cfg, *arguments)``; a user-facing error
    becomes one line on stderr and exit status 2. ``distributed``: a training stage, run under ``torchrun`` when
    ``dist`` asks for more than one process."""
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s", stream=sys.stdout)
    transformers.logging.set_verbosity_error()  # the load report of an encoder without its pooler is noise
    try:
        cfg = load_config(PARAMS)
        values = parse_arguments(cfg, arguments, sys.argv[1:])
        check_machine(cfg)  # the model, devices and precisions the params name exist here
        if distributed and cfg.dist.world_size > 1 and "LOCAL_RANK" not in os.environ:
            launch(cfg.dist)  # does not return
        main(cfg, *values)
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
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
