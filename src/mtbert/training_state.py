"""What a training run carries from step to step and across a kill, apart from the loop itself.

:class:`TrainState` (where the run stands), the checkpoint that holds it with every stateful part of the run
(:func:`save_checkpoint`, :func:`load_checkpoint`, :func:`replay`), and the per-step curves (:class:`Curves`).
:class:`~mtbert.training.Trainer` calls them; nothing here trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch

from mtbert.checkpoint import Checkpointer
from mtbert.devices import restore_rng, rng_state
from mtbert.distributed import Group
from mtbert.observe import GradientStats

EpochHook = Callable[[int, dict[str, float]], None]
StepHook = Callable[[int, dict[str, float]], None]  # (global step, values): the per-step curves


@dataclass
class TrainState:
    """Where a run stands: saved in every checkpoint, so a killed run resumes at the next step."""

    epoch: int = 0  # the epoch in progress
    step: int = 0  # steps of that epoch already done
    history: list[dict[str, float]] = field(default_factory=list)  # metrics of each finished epoch
    running: dict[str, list] = field(default_factory=dict)  # this epoch's [sum, steps] of each loss
    best_epoch: int = -1
    curves: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (global step, values) every log_every
    window: dict[str, list] = field(default_factory=dict)  # the losses since the last curve point, as ``running``

    def add_losses(self, losses: dict[str, float | torch.Tensor]) -> None:
        """Add a step's losses to the epoch's and the curve window's sums; a tensor stays where it is (no read-back
        until :meth:`mean_losses`)."""
        for sums in (self.running, self.window):
            for key, value in losses.items():
                total, n = sums.get(key, (0.0, 0))
                sums[key] = [total + value, n + 1]

    def mean_losses(self, sums: dict[str, list] | None = None) -> dict[str, float]:
        return {key: float(total) / n for key, (total, n) in (self.running if sums is None else sums).items()}

    def saved(self) -> dict:
        """The state as plain numbers, for a checkpoint (reads the running sums back once)."""
        plain = {
            k: {key: [float(total), n] for key, (total, n) in getattr(self, k).items()} for k in ("running", "window")
        }
        return {**asdict(self), **plain}

    def improves(self, metrics: dict[str, float]) -> bool:
        return self.best_epoch < 0 or metrics["overall"] > self.history[self.best_epoch]["overall"]

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record finished ``epoch``'s ``metrics`` and move to the next epoch; whether it is the best so far."""
        best = self.improves(metrics)
        if best:
            self.best_epoch = epoch
        self.history.append(metrics)
        self.epoch, self.step, self.running = epoch + 1, 0, {}
        return best


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> Any: ...


def save_checkpoint(
    checkpoints: Checkpointer, state: TrainState, parts: dict[str, Stateful], group: Group, device: torch.device
) -> None:
    """Rank 0 writes ``state``, each part's ``state_dict`` under its name and every process's random states (the
    dropout streams, CPU and GPU); the others only hand their random states over."""
    rng = group.gather(rng_state(device))
    if group.main:
        checkpoints.save(
            {"state": state.saved(), **{name: part.state_dict() for name, part in parts.items()}, "rng": rng}
        )


def load_checkpoint(
    checkpoints: Checkpointer, parts: dict[str, Stateful], group: Group, device: torch.device
) -> TrainState | None:
    """Restores ``parts`` (in their order) and this process's random state from the last checkpoint of the run and
    returns its state, or None without one. Rank 0 reads it and hands it to the others (no shared file system
    needed)."""
    payload = group.from_main(checkpoints.load() if group.main else None)
    if payload is None:
        return None
    for name, part in parts.items():
        part.load_state_dict(payload[name])
    rng = payload["rng"]  # one state per process of the run that wrote it; more processes now: rank 0's
    restore_rng(rng[group.rank] if group.rank < len(rng) else rng[0], device)
    state = TrainState(**payload["state"])
    state.curves = [(step, values) for step, values in state.curves]  # tuples, as an uninterrupted run has them
    return state


def replay(state: TrainState, on_epoch: EpochHook | None, on_curve: StepHook | None) -> None:
    """Calls the hooks again for what a resumed run had done, so a logger's files match an uninterrupted run."""
    for epoch, metrics in enumerate(state.history):
        if on_epoch:
            on_epoch(epoch, metrics)
    for step, values in state.curves:
        if on_curve:
            on_curve(step, values)


class Curves:
    """The per-step curves: every ``log_every`` steps a point with the mean losses, the learning rate and the
    gradient statistics of the steps since the last point; every ``eval_every`` steps the dev metrics too, but at
    an epoch's end (every ``epoch_steps``), which evaluates anyway. 0 turns either off."""

    def __init__(self, tasks: list[str], log_every: int, eval_every: int, epoch_steps: int) -> None:
        self.every, self.dev_every, self.epoch_steps = log_every, eval_every, epoch_steps
        self.stats = GradientStats(tasks)  # over the steps since the last curve point

    def point(
        self, state: TrainState, done: int, lr: float, evaluate: Callable[[], dict[str, float]]
    ) -> dict[str, float]:
        """After ``done`` steps of the run: the curve point due then (empty if none), also kept in ``state.curves``."""
        point: dict[str, float] = {}
        if self.every and done % self.every == 0:
            point = {**state.mean_losses(state.window), "lr": lr}
            point |= self.stats.summary()
            state.window = {}
            self.stats.reset()
        if self.dev_every and done % self.dev_every == 0 and done % self.epoch_steps:
            point |= {f"dev/{k}": v for k, v in evaluate().items()}
        if point:
            state.curves.append((done, point))
        return point
