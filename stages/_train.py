"""What the two training stages share: run keys for resuming, and a training run logged to dvclive and stdout."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from pathlib import Path

from _runner import ARTIFACTS
from dvclive import Live

from mtbert.checkpoint import Checkpointer
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


def train(model: MultiTaskModel, recipe: Recipe, data: TrainingData, run_name: str, key: str) -> TrainResult:
    """Train (resuming a killed run of the same key), logging each epoch to dvclive and stdout; the checkpoints are
    removed once the run has finished."""
    checkpoints = Checkpointer(ARTIFACTS.checkpoints(run_name), key)
    with Live(str(ARTIFACTS.live(run_name)), dvcyaml=None, save_dvc_exp=False) as live:

        def log(epoch: int, metrics: dict[str, float]) -> None:
            for name, value in metrics.items():
                live.log_metric(name, value)
            live.next_step()
            shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if "/" not in k)
            print(f"{run_name} epoch {epoch}: {shown}")

        result = Trainer(model, recipe, data).fit(checkpoints, on_epoch=log)
    checkpoints.clear()
    return result
