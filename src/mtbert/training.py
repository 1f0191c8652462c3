"""The one training loop, used by both stages.

Stage 1 (``pretrain``) is "all tasks + an aggregator"; stage 2 (``finetune``) is "one task + sum". A step:

1. per-task gradients: each task's loss is computed on its own batch, so each backward touches only its own
   graph (no ``retain_graph``); shared-parameter gradients become row i of a [T, P] Jacobian, head
   parameters keep their own task's gradient;
2. aggregation: ``direction = aggregator(J, counts)``;
3. the direction is written into the shared parameters' ``.grad`` and the optimizer steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from mtbert.aggregators import Aggregator
from mtbert.checkpoint import Checkpointer
from mtbert.config import LoopConfig
from mtbert.data.encoded import EncodedSplit, SpecialTokens, collate
from mtbert.errors import TrainingError
from mtbert.model import MultiTaskModel, autocast_dtype
from mtbert.observe import GradientStats
from mtbert.predict import evaluate
from mtbert.sampling import Sampler, make_sampler
from mtbert.tasks import TaskSpec, overall_score

log = logging.getLogger(__name__)
LOG_EVERY = 50  # steps between progress lines

EpochHook = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TaskData:
    spec: TaskSpec
    train: EncodedSplit
    dev: EncodedSplit


@dataclass
class TrainResult:
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def make_optimizer(model: MultiTaskModel, loop: LoopConfig) -> torch.optim.Optimizer:
    """AdamW with one learning rate per module kind: encoder ``lr``, heads ``head_lr``, PALs ``pal_lr``."""
    decay, no_decay = [], []
    for name, p in model.shared_parameters():
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    groups = [
        {"params": decay, "lr": loop.lr, "weight_decay": loop.weight_decay},
        {"params": no_decay, "lr": loop.lr, "weight_decay": 0.0},
        {"params": model.head_parameters(), "lr": loop.head_lr, "weight_decay": 0.0},
        {"params": model.pal_parameters(), "lr": loop.pal_lr, "weight_decay": loop.weight_decay},
    ]
    # fused: one kernel over all parameters instead of a Python loop over ~100 tensors (CPU and CUDA).
    fused = all(p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    return torch.optim.AdamW([g for g in groups if g["params"]], fused=fused)


def make_schedule(
    optimizer: torch.optim.Optimizer,
    total: int,
    warmup_ratio: float,
    kind: str = "linear",
    milestones: tuple[int, ...] = (),
    gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over ``warmup_ratio`` of the steps, then ``linear`` decay to 0 (BERT's schedule) or
    ``multistep``: the rates times ``gamma`` after each milestone step (as ``torch.optim.lr_scheduler.MultiStepLR``)."""
    warmup = int(total * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if kind == "multistep":
            return gamma ** sum(step >= m for m in milestones)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    """Trains ``model`` on ``data`` with ``aggregator``; resumable from ``checkpoint_dir``."""

    def __init__(
        self,
        model: MultiTaskModel,
        data: list[TaskData],
        aggregator: Aggregator,
        loop: LoopConfig,
        special: SpecialTokens,
        max_length: int,
        device: torch.device,
        sampler: Sampler | None = None,
        loss_weights: dict[str, float] | None = None,
    ) -> None:
        self.model = model.to(device)
        self.data = {d.spec.name: d for d in data}
        self.aggregator = aggregator.to(device)
        self.loop = loop
        self.special = special
        self.max_length = max_length
        self.device = device
        self.amp = autocast_dtype(loop.precision, device)
        self.shared = [p for _, p in model.shared_parameters()]
        self.sizes = [p.numel() for p in self.shared]
        self.aggregator.bind([(n, p.numel()) for n, p in model.shared_parameters()], len(data))
        # Default: every step one batch of every task (what gradient surgery needs).
        self.sampler = sampler or make_sampler(
            "oversample",
            {name: len(d.train) for name, d in self.data.items()},
            dict.fromkeys(self.data, loop.batch_size),
            loop.steps_per_epoch,
            loop.seed,
            lengths={name: d.train.lengths() for name, d in self.data.items()} if loop.group_by_length else None,
        )
        self.loss_weights = loss_weights or {}
        self.index = {name: i for i, name in enumerate(self.data)}  # task -> its row of the Jacobian
        self.total_steps = self.sampler.steps * loop.epochs
        self.optimizer = make_optimizer(model, loop)
        milestones = tuple(m * self.sampler.steps for m in loop.milestones)
        self.schedule = make_schedule(
            self.optimizer, self.total_steps, loop.warmup_ratio, loop.schedule, milestones, loop.gamma
        )
        self.jacobian = torch.zeros(len(data), sum(self.sizes), device=device)
        self.rows = [self._views(row) for row in self.jacobian]
        self.stats = GradientStats(list(self.data))

    def _task_gradients(self, plan, global_step: int) -> tuple[Tensor, dict[str, float]]:
        """Row i of ``self.jacobian`` <- task i's gradient of the shared parameters.

        Before task i's backward, each shared parameter's ``.grad`` is set to a view of row i, so autograd
        accumulates straight into the Jacobian: no per-step allocation of gradient buffers and no copy. A task
        absent from the step (one-task-per-step sampling) keeps a zero row and a zero count. Row i is the gradient
        of ``loss_weights[task] * loss``; the logged loss is unweighted.
        """
        self.jacobian.zero_()
        losses = {}
        counts = torch.zeros(len(self.data), dtype=torch.float32)
        for task, rows in plan:
            i = self.index[task]
            for p, view in zip(self.shared, self.rows[i], strict=True):
                p.grad = view
            spec = self.data[task].spec
            batch = collate(self.data[task].train, rows, spec.encoding, self.special, self.max_length)
            batch = batch.to(self.device)
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                out = self.model(task, batch.inputs)
            loss = spec.loss(out.float(), batch.labels)
            if not torch.isfinite(loss):
                raise TrainingError(f"non-finite loss {loss.item()} at step {global_step} on task {task!r}")
            # Each task's graph is its own (own batch), so no retain_graph; its head gets only its own gradient.
            # (No graph at all: a parameter-free head, e.g. bi-cosine, on a frozen encoder has nothing to train.)
            if loss.requires_grad:
                (self.loss_weights.get(task, 1.0) * loss).backward()
            losses[f"loss_{task}"] = loss.item()
            counts[i] = len(rows)
        return counts.to(self.device), losses

    def step(self, plan, global_step: int) -> dict[str, float]:
        self.model.train()
        counts, losses = self._task_gradients(plan, global_step)
        if self.model.encoder_frozen:  # heads-only epoch: no encoder gradient, so nothing to aggregate
            for p in self.shared:
                p.grad = None  # AdamW skips parameters without a gradient (no weight decay either)
        else:
            direction = self.aggregator(self.jacobian, counts)
            for p, view in zip(self.shared, self._views(direction), strict=True):
                p.grad = view
            self.stats.update(self.aggregator)
        if self.loop.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.loop.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return losses

    def heads_only(self, epoch: int) -> bool:
        """Whether ``epoch`` trains only the heads (the freeze schedule ``heads_only_first`` / ``heads_only_last``)."""
        return epoch < self.loop.heads_only_first or epoch >= self.loop.epochs - self.loop.heads_only_last

    def evaluate(self, batch_size: int = 128) -> dict[str, float]:
        metrics = {}
        for name, d in self.data.items():
            metrics[f"{name}_{d.spec.metric_name}"] = evaluate(
                self.model, d.spec, d.dev, self.special, self.max_length, self.device, batch_size
            )
        metrics["overall"] = overall_score(metrics, [d.spec for d in self.data.values()])
        return metrics

    def _views(self, flat: Tensor) -> list[Tensor]:
        """Views of a flat [P] tensor shaped like each shared parameter."""
        return [v.view_as(p) for v, p in zip(flat.split(self.sizes), self.shared, strict=True)]

    def _payload(self, progress: dict) -> dict:
        return {
            "progress": progress,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "aggregator": self.aggregator.state_dict(),
            "stats": self.stats.state_dict(),
            "rng": torch.get_rng_state(),
        }

    def _restore(self, payload: dict) -> dict:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
        self.aggregator.load_state_dict(payload["aggregator"])
        self.stats.load_state_dict(payload["stats"])
        torch.set_rng_state(payload["rng"])
        return payload["progress"]

    def fit(self, checkpoints: Checkpointer | None = None, on_epoch: EpochHook | None = None) -> TrainResult:
        """Train all epochs, resuming from ``checkpoints`` if it holds this run; keep the best epoch's weights.

        "Best" is the dev overall score (the mean of normalised task metrics) after each epoch.
        """
        torch.manual_seed(self.loop.seed)
        progress = {
            "epoch": 0,
            "step": 0,
            "history": [],
            "running": {},
            "best_epoch": -1,
            "best_weights": None,
        }
        payload = checkpoints.load() if checkpoints else None
        if payload is not None:
            progress = self._restore(payload)
            log.info(
                "resuming from checkpoint %s: epoch %d, step %d", checkpoints.path, progress["epoch"], progress["step"]
            )
            for epoch, metrics in enumerate(progress["history"]):
                if on_epoch:  # replay, so the logger's files match an uninterrupted run
                    on_epoch(epoch, metrics)
        for epoch in range(progress["epoch"], self.loop.epochs):
            plan = self.sampler.epoch(epoch)
            self.model.encoder_frozen = self.heads_only(epoch)
            running = progress["running"]  # per-epoch [sum, steps] of each training loss
            for step in range(progress["step"], len(plan)):
                for key, value in self.step(plan[step], epoch * len(plan) + step).items():
                    total, n = running.get(key, (0.0, 0))
                    running[key] = (total + value, n + 1)
                progress["step"] = step + 1
                if progress["step"] % LOG_EVERY == 0:
                    means = " ".join(f"{k}={total / n:.4f}" for k, (total, n) in running.items())
                    log.info("epoch %d step %d/%d %s", epoch, progress["step"], len(plan), means)
                every = self.loop.checkpoint_every
                if checkpoints and every and progress["step"] % every == 0 and progress["step"] < len(plan):
                    checkpoints.save(self._payload(progress))
            metrics = self.evaluate()
            metrics.update({k: total / n for k, (total, n) in running.items()})
            metrics.update(self.stats.summary())
            self.stats.reset()
            progress["history"].append(metrics)
            best = progress["history"][progress["best_epoch"]]["overall"] if progress["best_epoch"] >= 0 else None
            if best is None or metrics["overall"] > best:
                progress["best_epoch"] = epoch
                progress["best_weights"] = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            progress.update(epoch=epoch + 1, step=0, running={})
            if checkpoints:
                checkpoints.save(self._payload(progress))
            if on_epoch:
                on_epoch(epoch, metrics)
        self.model.encoder_frozen = False
        self.model.load_state_dict(progress["best_weights"])
        history = progress["history"]
        return TrainResult(progress["best_epoch"], history[progress["best_epoch"]], history)
