"""Glue the stages share: building task data, models and trainers from a :class:`~mtbert.config.Config`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from mtbert.aggregators import make_aggregator
from mtbert.config import Config, LoopConfig, PretrainConfig
from mtbert.data.prepare import load_prepared, load_special
from mtbert.model import MultiTaskModel, load_encoder, pick_device
from mtbert.sampling import make_sampler
from mtbert.tasks import TaskSpec, get_tasks
from mtbert.training import TaskData, Trainer


def task_data(cfg: Config, tasks: list[TaskSpec]) -> list[TaskData]:
    prepared = Path(cfg.data.prepared_dir)
    return [
        TaskData(t, load_prepared(prepared, t.name, "train"), load_prepared(prepared, t.name, "dev")) for t in tasks
    ]


def configured_tasks(cfg: Config, names: list[str] | tuple[str, ...] | None = None) -> list[TaskSpec]:
    """The tasks ``names`` (default: all of ``cfg.tasks``) with the heads chosen in ``model.heads``."""
    heads = {task: dataclasses.asdict(head) for task, head in cfg.model.heads.items()}
    return get_tasks(names if names is not None else cfg.tasks, heads)


def new_model(cfg: Config, tasks: list[TaskSpec] | None = None, seed: int = 0) -> MultiTaskModel:
    """The pretrained encoder with fresh heads (and PALs); ``seed`` makes their initialisation reproducible."""
    tasks = tasks if tasks is not None else configured_tasks(cfg)
    torch.manual_seed(seed)
    encoder = load_encoder(cfg.model.name)
    if cfg.model.freeze_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    return MultiTaskModel(encoder, tasks, cfg.model.pooling, cfg.model.dropout, cfg.model.pals, cfg.model.pal_heads)


def make_trainer(cfg: Config, model: MultiTaskModel, data: list[TaskData], loop: LoopConfig) -> Trainer:
    """Stage 1 when ``loop`` is a :class:`PretrainConfig` (its gradient method, sampling, task ratio and loss
    weights), else one task with "sum" and round-robin batches."""
    if isinstance(loop, PretrainConfig):
        aggregator, batch_sizes = make_aggregator(loop.grad, **loop.grad_options), loop.batch_sizes(cfg.tasks)
        data = [d for d in data if d.spec.name in batch_sizes]
        multipliers = {t: m for t, m in loop.multipliers.items() if t in batch_sizes}  # tasks that take part
        mode, anneal_to, loss_weights = loop.sampling, loop.anneal_to, loop.loss_weights
    else:
        aggregator, batch_sizes = make_aggregator("sum"), {d.spec.name: loop.batch_size for d in data}
        mode, multipliers, anneal_to, loss_weights = "oversample", None, 0.2, None
    sampler = make_sampler(
        mode,
        {d.spec.name: len(d.train) for d in data},
        batch_sizes,
        loop.steps_per_epoch,
        loop.seed,
        lengths={d.spec.name: d.train.lengths() for d in data} if loop.group_by_length else None,
        multipliers=multipliers,
        epochs=loop.epochs,
        anneal_to=anneal_to,
    )
    special = load_special(Path(cfg.data.prepared_dir))
    device = pick_device(loop.device)
    return Trainer(model, data, aggregator, loop, special, cfg.model.max_length, device, sampler, loss_weights)


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
