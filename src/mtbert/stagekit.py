"""Glue the stages share: building task data, models and trainers from a :class:`~mtbert.config.Config`."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mtbert.aggregators import make_aggregator
from mtbert.config import Config, LoopConfig, PretrainConfig
from mtbert.data.prepare import load_prepared, load_special
from mtbert.model import MultiTaskModel, load_encoder, pick_device
from mtbert.tasks import TaskSpec, get_tasks
from mtbert.training import TaskData, Trainer


def task_data(cfg: Config, tasks: list[TaskSpec]) -> list[TaskData]:
    prepared = Path(cfg.data.prepared_dir)
    return [
        TaskData(t, load_prepared(prepared, t.name, "train"), load_prepared(prepared, t.name, "dev")) for t in tasks
    ]


def new_model(cfg: Config, tasks: list[TaskSpec] | None = None, seed: int = 0) -> MultiTaskModel:
    """The pretrained encoder with fresh heads; ``seed`` makes the heads' initialisation reproducible."""
    tasks = tasks if tasks is not None else get_tasks(cfg.tasks)
    torch.manual_seed(seed)
    encoder = load_encoder(cfg.model.name)
    if cfg.model.freeze_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    return MultiTaskModel(encoder, tasks, cfg.model.pooling, cfg.model.dropout)


def make_trainer(cfg: Config, model: MultiTaskModel, data: list[TaskData], loop: LoopConfig) -> Trainer:
    """Stage 1 when ``loop`` is a :class:`PretrainConfig` (its gradient method and task ratio), else "sum"."""
    if isinstance(loop, PretrainConfig):
        aggregator, batch_sizes = make_aggregator(loop.grad, **loop.grad_options), loop.batch_sizes(cfg.tasks)
        data = [d for d in data if d.spec.name in batch_sizes]
    else:
        aggregator, batch_sizes = make_aggregator("sum"), None
    special = load_special(Path(cfg.data.prepared_dir))
    device = pick_device(loop.device)
    return Trainer(model, data, aggregator, loop, special, cfg.model.max_length, device, batch_sizes)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
