"""What the two training stages share: run keys for resuming, the process group when ``torchrun`` started several
(``stages/_runner.py`` launches it when ``dist`` asks for more than one process), and a training run logged to
dvclive and stdout by rank 0."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import signal
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path

from dvclive import Live
from mtbert.artifacts import Artifacts
from mtbert.checkpoint import Checkpointer
from mtbert.devices import pick_device
from mtbert.distributed import Group, join, leave
from mtbert.model import MultiTaskModel
from mtbert.prepare import TrainingData
from mtbert.recipe import Recipe
from mtbert.training import Trainer, TrainResult


def run_key(*parts: object, files: list[Path] = ()) -> str:
    """A digest of configuration objects and input files: a checkpoint resumes only under the same key."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(asdict(part) if is_dataclass(part) else part, sort_keys=True, default=str).encode())
    for path in files:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def process_group(device: str) -> Group:
    """This process's place among the training processes: joined from ``torchrun``'s environment, if it started us."""
    if "LOCAL_RANK" not in os.environ:
        return Group()
    die_with_launcher()
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    return join(pick_device(device), rank, world, local)


def die_with_launcher() -> None:
    """torchrun starts its workers in their own session: if the launcher is killed (SIGKILL cannot be forwarded),
    they would train on and write into the workspace. On Linux the kernel kills this worker when it dies."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def train(
    model: MultiTaskModel, recipe: Recipe, data: TrainingData, paths: Artifacts, run_name: str, key: str
) -> TrainResult | None:
    """Train (resuming a killed run of the same key), logging each epoch to dvclive and stdout; the checkpoints are
    removed once the run has finished. None on the processes other than rank 0, which write nothing."""
    group = process_group(recipe.loop.device)
    try:
        checkpoints = Checkpointer(paths.checkpoints(run_name), key)
        trainer = Trainer(model, recipe, data, group, progress=sys.stderr.isatty())
        if not group.main:
            trainer.fit(checkpoints)
            return None
        with Live(str(paths.live(run_name)), dvcyaml=None, save_dvc_exp=False) as live:
            steps = trainer.sampler.steps

            def log(epoch: int, metrics: dict[str, float]) -> None:
                live.step = (epoch + 1) * steps  # one x axis for both: the training step
                for name, value in metrics.items():
                    live.log_metric(name, value)
                live.make_summary()
                shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if "/" not in k)
                print(f"{run_name} epoch {epoch}: {shown}")

            def curve(step: int, values: dict[str, float]) -> None:
                live.step = step
                for name, value in values.items():
                    live.log_metric(f"steps/{name}", value)

            result = trainer.fit(checkpoints, on_epoch=log, on_curve=curve)
    finally:  # a failed step on one process must not leave the others waiting in a collective
        leave()
    checkpoints.clear()
    return result
