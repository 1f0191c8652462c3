"""The one training loop, used by both stages; what differs between them is the :class:`~mtbert.recipe.Recipe`.

A step (:meth:`Trainer.step`):

1. per-task gradients: each task's loss on its own batch, backpropagated into its row of a [T, P] Jacobian over
   the shared parameters (:class:`~mtbert.jacobian.JacobianStep`); each head keeps its own task's gradient;
   with several processes each computes its slice of every batch and one all-reduce sums the shares
   (:mod:`mtbert.distributed`); with fp16 the losses are scaled and the Jacobian unscaled (:mod:`mtbert.scaling`);
2. aggregation: ``direction = aggregator(J, counts, losses)``, the same on every process (a loss-weighting method
   also weighs each task's own parameters' gradients: ``own_weights``);
3. the direction becomes the shared parameters' ``.grad``; clip, step, schedule.

After each epoch the dev metrics decide the best epoch, whose weights are saved once, when they improve; training
resumes from the last checkpoint of the same run. Only rank 0 evaluates, writes checkpoints and calls the epoch hook.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass

import torch

from mtbert.aggregators import NonFiniteJacobian
from mtbert.checkpoint import Checkpointer
from mtbert.devices import autocast_dtype, pick_device
from mtbert.distributed import Group
from mtbert.errors import TrainingError
from mtbert.jacobian import JacobianStep
from mtbert.model import MultiTaskModel
from mtbert.observe import GradientStats
from mtbert.predictions import evaluate
from mtbert.prepare import TrainingData
from mtbert.progress import Progress
from mtbert.recipe import Recipe
from mtbert.sampling import Step
from mtbert.scaling import LossScaler
from mtbert.training_state import (
    Curves,
    EpochHook,
    Stateful,
    StepHook,
    TrainState,
    load_checkpoint,
    replay,
    save_checkpoint,
)

log = logging.getLogger(__name__)
LOG_EVERY = 50  # steps between progress lines (or updates of the bar's losses)


@dataclass
class TrainResult:
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]]


def lr_factor(
    step: int,
    total: int,
    warmup_ratio: float,
    kind: str,
    milestones: tuple[int, ...],
    gamma: float,
    cycle: int = 0,
) -> float:
    """The learning-rate multiplier at ``step`` of ``total``: linear warmup over ``warmup_ratio`` of the steps,
    then ``linear`` decay to 0 (BERT's schedule), ``multistep``: ``gamma`` per milestone step passed, or ``cosine``:
    a half cosine to 0 over each ``cycle`` steps (one epoch), restarting at 1 each cycle (SGDR, Loshchilov & Hutter
    2017; the warmup, ``warmup_ratio`` of the first cycle, in that cycle only), so every epoch ends at a low rate:
    the snapshots of Huang et al. 2017. With one epoch ``cosine`` is plain cosine decay."""
    cycle = cycle or total
    warmup = int((cycle if kind == "cosine" else total) * warmup_ratio)
    if step < warmup:
        return (step + 1) / warmup
    if kind == "multistep":
        return gamma ** sum(step >= m for m in milestones)
    if kind == "cosine":
        start, length = (warmup, cycle - warmup) if step < cycle else (step - step % cycle, cycle)
        return 0.5 * (1 + math.cos(math.pi * (step - start) / max(1, length)))
    return max(0.0, (total - step) / max(1, total - warmup))


class Trainer:
    """Trains ``model`` on ``data`` as ``recipe`` says, as process ``group.rank`` of ``group.world``; resumable from
    a :class:`Checkpointer`. ``progress``: rank 0 draws a bar over each epoch's steps and the dev evaluation (the
    caller passes ``sys.stderr.isatty()``) instead of a log line every ``LOG_EVERY`` steps."""

    def __init__(
        self,
        model: MultiTaskModel,
        recipe: Recipe,
        data: TrainingData,
        group: Group | None = None,
        progress: bool = False,
    ) -> None:
        loop = recipe.loop
        self.recipe, self.loop, self.data, self.group = recipe, loop, data, group or Group()
        self.progress = progress and self.group.main
        self.device = self.group.place(pick_device(loop.device))
        self.model = model.to(self.device)
        model.freeze_lower_layers(loop.freeze_layers)
        self.amp = autocast_dtype(loop.precision, self.device)
        self.scaler = LossScaler(enabled=self.amp == torch.float16)
        self.sampler = recipe.make_sampler(data.sizes(), data.lengths())
        own = {task: model.task_parameters(task) for task in recipe.tasks}
        self.jacobian = JacobianStep(model.shared_parameters(), recipe.tasks, self.device, own)
        self.aggregator = recipe.make_aggregator()  # its state stays on the CPU, where it works on the Gramian's copy
        self.aggregator.bind(self.jacobian.layout, len(recipe.tasks))
        groups = model.param_groups(loop.lr, loop.head_lr, loop.pal_lr, loop.weight_decay, loop.layer_decay)
        # fused: one kernel over all parameters instead of a Python loop over ~100 tensors (CPU and CUDA).
        self.optimizer = torch.optim.AdamW(groups, fused=self.device.type in ("cpu", "cuda"))
        total, milestones = self.sampler.steps * loop.epochs, tuple(m * self.sampler.steps for m in loop.milestones)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: lr_factor(s, total, loop.warmup_ratio, loop.schedule, milestones, loop.gamma, self.sampler.steps),
        )
        self.stats = GradientStats(list(recipe.tasks))  # over each epoch
        self.curves = Curves(list(recipe.tasks), loop.log_every, loop.eval_every, self.sampler.steps)

    def step(self, step: Step, global_step: int) -> dict[str, torch.Tensor]:
        """One optimisation step on the batches of ``step`` (this process computes its shard of each); returns each
        task's (unweighted) loss over the whole batch as a tensor on the device, or nothing if an inf/NaN in fp16
        made the step skip.

        Nothing is read back to the host here but where the method needs it: the Gramian's ``[T, T]`` copy to the CPU
        (every method; it also catches a non-finite gradient), the fp16 overflow flag, and with several processes
        the flags of the task-specific parameters that received a gradient (``tests/test_training.py`` counts them)."""
        self.model.train()
        self.jacobian.zero()
        for task, rows in step:
            mine = self.group.shard(rows)
            if len(mine) == 0:  # a batch smaller than the number of processes: nothing of this task here
                self.jacobian.count(task, len(rows))
                continue
            batch = self.data.batch(task, mine).to(self.device)
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                loss = self.model.task_loss(task, batch)
            share = len(mine) / len(rows)
            self.jacobian.backward(task, loss, len(rows), share, self.recipe.loss_weight(task) * self.scaler.scale)
        self.jacobian.reduce(self.group)
        if self.scaler.enabled and not self.scaler.update(self.jacobian.unscale(self.scaler.scale)):
            log.info("step %d: inf/NaN gradient in fp16, skipped; loss scale now %g", global_step, self.scaler.scale)
            self.optimizer.zero_grad(set_to_none=True)
            self.jacobian.write(None)
            with warnings.catch_warnings():  # the schedule counts steps, skipped ones too (as with GradScaler)
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                self.schedule.step()
            return {}
        present = {task for task, _ in step}
        values = self.jacobian.losses.double()  # a copy that stays on the device: read back when logged
        losses = {f"loss_{task}": values[i] for task, i in self.jacobian.index.items() if task in present}
        if self.model.encoder_frozen:  # heads-only epoch: no encoder gradient, so nothing to aggregate
            self.jacobian.write(None)
        else:
            try:
                direction = self.aggregator(self.jacobian.matrix, self.jacobian.counts, self.jacobian.losses)
            except NonFiniteJacobian as err:
                task = self.recipe.tasks[err.rows[0]]
                loss = self.jacobian.losses[err.rows[0]].item()
                raise TrainingError(
                    f"non-finite gradient at step {global_step} on task {task!r} (loss {loss})"
                ) from None
            self.jacobian.write(direction)
            self.jacobian.weigh_own(self.aggregator.own_weights)
            self.stats.update(self.aggregator)
            self.curves.stats.update(self.aggregator)
        if self.loop.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.loop.max_grad_norm)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return losses

    def heads_only(self, epoch: int) -> bool:
        """Whether ``epoch`` trains only the heads (the freeze schedule ``heads_only_first`` / ``heads_only_last``)."""
        return epoch < self.loop.heads_only_first or epoch >= self.loop.epochs - self.loop.heads_only_last

    def evaluate(self) -> dict[str, float]:
        """Dev metrics of the recipe's tasks, at the stage's prediction batch size and precision: computed by rank 0
        (so they equal a one-process run's), the same on every process."""
        metrics = None
        if self.group.main:
            metrics = evaluate(
                self.model, self.data, self.device, self.recipe.eval_batch_size, self.loop.precision, self.progress
            )
        return self.group.from_main(metrics)

    def fit(
        self,
        checkpoints: Checkpointer | None = None,
        on_epoch: EpochHook | None = None,
        on_curve: StepHook | None = None,
    ) -> TrainResult:
        """Train every epoch, resuming from ``checkpoints`` if it holds this run (default: in memory, no resume);
        end with the best epoch's weights ("best": the dev overall score, the mean of normalised task metrics).
        Every ``log_every`` steps ``on_curve`` gets the losses, learning rate and gradient statistics of those steps
        (and the dev metrics every ``eval_every`` steps). Only rank 0 reads and writes ``checkpoints`` and calls the
        hooks; a resumed run calls them again for what it had done, so a logger's files match an uninterrupted run."""
        checkpoints = checkpoints or Checkpointer(None, "in-memory")
        main = self.group.main
        torch.manual_seed(self.recipe.seed + self.group.rank)  # dropout: each process its own masks
        state = load_checkpoint(checkpoints, self._checkpointed(), self.group, self.device)
        if state is None:
            state = TrainState()
        elif main:
            log.info("resuming from checkpoint %s: epoch %d, step %d", checkpoints.path, state.epoch, state.step)
            replay(state, on_epoch, on_curve)
        self.group.broadcast_module(self.model)  # every process starts from rank 0's parameters
        for epoch in range(state.epoch, self.loop.epochs):
            plan = self.sampler.epoch(epoch)
            self.model.encoder_frozen = self.heads_only(epoch)
            steps = Progress(range(state.step, len(plan)), self.progress, desc=f"epoch {epoch}")
            for step in steps:
                state.add_losses(self.step(plan[step], epoch * len(plan) + step))
                state.step = step + 1
                done = epoch * len(plan) + state.step
                point = self.curves.point(state, done, self.optimizer.param_groups[0]["lr"], self.evaluate)
                if point and main and on_curve:
                    on_curve(done, point)
                if main and state.step % LOG_EVERY == 0:
                    means = " ".join(f"{k}={v:.4f}" for k, v in state.mean_losses().items())
                    if not steps.note(means):
                        log.info("epoch %d step %d/%d %s", epoch, state.step, len(plan), means)
                every = self.loop.checkpoint_every
                if every and state.step % every == 0 and state.step < len(plan):
                    save_checkpoint(checkpoints, state, self._checkpointed(), self.group, self.device)
            means = state.mean_losses()
            if bad := [k for k, v in means.items() if not math.isfinite(v)]:  # heads-only epochs aggregate nothing
                raise TrainingError(f"non-finite mean {bad[0]} in epoch {epoch}")
            metrics = {**self.evaluate(), **means, **self.stats.summary()}
            self.stats.reset()
            if state.end_epoch(epoch, metrics) and main:
                checkpoints.save_best(self.model.state_dict())
            save_checkpoint(checkpoints, state, self._checkpointed(), self.group, self.device)
            if main and on_epoch:
                on_epoch(epoch, metrics)
        self.model.encoder_frozen = False
        if main:
            self.model.load_state_dict(checkpoints.load_best())
        self.group.broadcast_module(self.model)
        return TrainResult(state.best_epoch, state.history[state.best_epoch], state.history)

    def _checkpointed(self) -> dict[str, Stateful]:
        """Every part of the run a checkpoint restores besides :class:`TrainState`, in the order it restores them."""
        return {
            "model": self.model,
            "optimizer": self.optimizer,
            "schedule": self.schedule,
            "aggregator": self.aggregator,
            "stats": self.stats,
            "scaler": self.scaler,
        }
