"""The recipe of one training run: the only place where pretraining and fine-tuning differ.

Stage 1 (:meth:`Recipe.pretrain`) is "the tasks with a ratio > 0 + a gradient method + a sampling mode";
stage 2 (:meth:`Recipe.finetune`) is "one task + sum + round-robin batches". The trainer takes a model, a recipe
and data, and builds no defaults of its own. Building a recipe checks it: its constructor builds the aggregator and
a sampler, so their own rules apply, and raises ``ValueError("<key>: <problem>")``; built from params
(:meth:`Recipe.pretrain`, :meth:`Recipe.finetune`) it raises :class:`~mtbert.errors.ConfigError` naming the params key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from mtbert._typed import prefixed
from mtbert.aggregators import AGGREGATOR_NAMES, Aggregator, aggregator_options, make_aggregator
from mtbert.config import Config, LoopConfig
from mtbert.errors import ConfigError
from mtbert.sampling import ONE_TASK_PER_STEP, MultiTaskSampler, make_sampler

# A sampler's argument -> the params key (within the section) that sets it.
_SAMPLER_KEYS = {"steps": "steps_per_epoch", "mode": "sampling", "multiplier": "multipliers", "anneal_to": "anneal_to"}


def _sampler_error(err: ValueError) -> ValueError:
    """The sampler's "<argument> <problem>" as "<params key>: <problem>" (the sampling mode when unclear)."""
    first, _, rest = str(err).partition(" ")
    argument = first.rstrip(":")
    if argument in _SAMPLER_KEYS:
        return ValueError(f"{_SAMPLER_KEYS[argument]}: {rest}")
    return ValueError(f"sampling: {err}")


@dataclass(frozen=True)
class Recipe:
    """What one training run does.

    Parameters:
        tasks: the tasks that train, in the order of the Jacobian's rows.
        batch_sizes: rows of each task per step (when the step holds that task).
        sampling, multipliers, anneal_to: which task(s) each step holds (:func:`mtbert.sampling.make_sampler`).
        grad, grad_options: the gradient method (:func:`mtbert.aggregators.make_aggregator`).
        loss_weights: per-task λ multiplying the task's loss before its backward (missing: 1).
        steps_per_epoch: 0 for the sampling mode's natural epoch.
        seed: the seed of the batches, the dropout masks and the gradient method's draws (``grad_options.seed``
            overrides the last).
        loop: epochs, optimiser, schedule, checkpoints, device and precision.
        eval_batch_size: rows per batch of the dev evaluation after each epoch.
    """

    tasks: tuple[str, ...]
    batch_sizes: dict[str, int]
    sampling: str
    multipliers: dict[str, int]
    anneal_to: float
    grad: str
    grad_options: dict[str, Any]
    loss_weights: dict[str, float]
    steps_per_epoch: int
    seed: int
    loop: LoopConfig
    eval_batch_size: int

    @classmethod
    def pretrain(cls, cfg: Config) -> Recipe:
        """Stage 1: the tasks with a ratio > 0, ``train.grad``, ``train.sampling`` and the loss weights."""
        train = cfg.train
        active = {t: train.task_ratio.get(t, 1) * train.batch_size for t in cfg.tasks}
        active = {t: n for t, n in active.items() if n > 0}
        with _config_error("train."):
            return cls(
                tasks=tuple(active),
                batch_sizes=active,
                sampling=train.sampling,
                multipliers={t: m for t, m in train.multipliers.items() if t in active},
                anneal_to=train.anneal_to,
                grad=train.grad,
                grad_options=train.grad_options,
                loss_weights={t: w for t, w in train.loss_weights.items() if t in active},
                steps_per_epoch=train.steps_per_epoch,
                seed=train.seed,
                loop=train,
                eval_batch_size=cfg.predict.batch_size,
            )

    @classmethod
    def finetune(cls, cfg: Config, task: str, seed: int) -> Recipe:
        """Stage 2: ``task`` alone with sum and round-robin batches, ``seed``, the task's steps per epoch and its
        encoder learning rate."""
        ft = cfg.finetune
        with _config_error("finetune."):
            return cls(
                tasks=(task,),
                batch_sizes={task: ft.batch_size},
                sampling="oversample",
                multipliers={},
                anneal_to=1.0,
                grad="sum",
                grad_options={},
                loss_weights={},
                steps_per_epoch=ft.task_steps.get(task, ft.steps_per_epoch),
                seed=seed,
                loop=dataclasses.replace(ft, lr=ft.task_lr.get(task, ft.lr)),
                eval_batch_size=cfg.predict.batch_size,
            )

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("task_ratio: every task has ratio 0; at least one task must train")
        for task, weight in self.loss_weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"loss_weights.{task}: expected a finite number >= 0, got {weight!r}")
        if not any(self.loss_weight(t) > 0 for t in self.tasks):
            raise ValueError("loss_weights: every training task has weight 0; at least one must be > 0")
        try:
            aggregator = self.make_aggregator()
            aggregator.check_tasks(len(self.tasks))  # what bind() checks when training starts
        except ValueError as err:
            raise ValueError(f"{'grad' if self.grad not in AGGREGATOR_NAMES else 'grad_options'}: {err}") from None
        if not aggregator.linear and (len(self.tasks) < 2 or self.sampling in ONE_TASK_PER_STEP):
            why = (
                f"only {list(self.tasks)} takes part in each step (task_ratio)"
                if len(self.tasks) < 2
                else f"sampling {self.sampling!r} puts a single task in each step"
            )
            raise ValueError(
                f"grad: {self.grad!r} combines the gradients of several tasks in one step, but {why}; "
                "use a linear method (sum, weighted) or a round-robin sampling (oversample, undersample)"
            )
        try:
            self.make_sampler(dict(self.batch_sizes))  # one batch per task: checks every argument but the data
        except ValueError as err:
            raise _sampler_error(err) from None
        multiplied = any(m != 1 for m in self.multipliers.values())
        if multiplied and self.steps_per_epoch and self.sampling not in ("proportional", "annealed"):
            raise ValueError(
                f"multipliers: with sampling {self.sampling!r} they only set the epoch length, which "
                f"steps_per_epoch ({self.steps_per_epoch}) fixes; set steps_per_epoch: 0 to use them"
            )

    def make_aggregator(self) -> Aggregator:
        """The gradient method with ``grad_options``; a method that draws (PCGrad's orders, …) takes the run's
        ``seed`` unless the options set its own."""
        options = dict(self.grad_options)
        if "seed" in aggregator_options(self.grad):
            options.setdefault("seed", self.seed)
        return make_aggregator(self.grad, **options)

    def make_sampler(self, sizes: dict[str, int], lengths: dict[str, np.ndarray] | None = None) -> MultiTaskSampler:
        """The sampler over training sets of ``sizes`` rows (``lengths``: per-row tokens, for length grouping)."""
        return make_sampler(
            self.sampling,
            sizes,
            self.batch_sizes,
            self.steps_per_epoch,
            self.seed,
            lengths=lengths if self.loop.group_by_length else None,
            multipliers=self.multipliers,
            epochs=self.loop.epochs,
            anneal_to=self.anneal_to,
        )

    def loss_weight(self, task: str) -> float:
        return self.loss_weights.get(task, 1.0)


def all_recipes(cfg: Config) -> list[Recipe]:
    """Every recipe ``cfg`` asks for (pretraining, then each fine-tuning): builds, and so checks, them all."""
    return [Recipe.pretrain(cfg)] + [Recipe.finetune(cfg, t, s) for t in cfg.tasks for s in cfg.finetune.seeds]


@contextmanager
def _config_error(section: str) -> Iterator[None]:
    """A recipe built from params: its ``ValueError`` becomes the one-line :class:`ConfigError` naming the key."""
    try:
        with prefixed(section):
            yield
    except ValueError as err:
        raise ConfigError(str(err)) from None
