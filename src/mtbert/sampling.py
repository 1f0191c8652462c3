"""Which rows of which task each training step uses.

A sampler turns task sizes into an epoch *plan*: a list of steps, each a list of ``(task, rows)``. Plans are
pure functions of ``(seed, epoch)``, so a resumed run rebuilds the same plan and skips the steps it did.

As in sentence-transformers' ``MultiDatasetBatchSampler``, a :class:`MultiTaskSampler` composes two small parts:
one :class:`RowStream` per task says which rows that task's next batch holds, and one *schedule* says which
task(s) each step holds. Let ``E_i`` be task i's rows times its dataset multiplier (the "3-1-4" recipe replays
SST 3x and STS 4x) and ``n_i = max(1, E_i // b_i)`` its batches per multiplied pass. The sampling modes
(:func:`make_sampler`; registry: :func:`schedules`) and their schedules:

- ``oversample`` (``RoundRobin("longest")``): every step holds one batch of every task; natural epoch:
  ``max_i n_i`` steps, smaller tasks cycle.
- ``undersample`` (``RoundRobin("shortest")``): every step holds one batch of every task; natural epoch:
  ``min_i n_i`` steps, i.e. it ends when the first multiplied set is exhausted.
- ``sequential`` (``Sequential()``): one task per step, all of task 1's steps, then task 2's, ... in task order;
  natural epoch: ``n_i`` steps per task.
- ``proportional`` (``Proportional()``): one task per step, drawn with probability ∝ ``E_i``; natural epoch:
  ``Σ_i n_i`` steps.
- ``annealed`` (``Proportional(epochs, anneal_to)``): like proportional with probability ∝ ``E_i^α``, α going
  linearly from 1 at the first epoch to ``anneal_to`` at the last (Stickland & Murray 2019, "BERT and PALs").

For every mode, ``steps > 0`` fixes the epoch length to exactly ``steps`` (sequential: an equal share per task, the
first ``steps % T`` tasks one more); ``steps == 0`` uses the natural length. Each stream yields reshuffled passes
over its task's real rows (a multiplier of m means m such passes, not m copies shuffled together, so a row never
repeats within a pass), never a short batch, cycling when the data runs out.

Random draws, in order: the schedule's (proportional modes), then each stream's, lazily at that task's first batch
and at each new pass, so they interleave with the steps. Changing that order changes every plan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

Step = list[tuple[str, np.ndarray]]

MEGABATCH = 50  # batches per length-sorted pool, as in HF Trainer's group_by_length


def length_grouped(order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Reorder ``order`` so that each run of ``batch_size`` rows has similar lengths.

    Pools of ``MEGABATCH`` batches are sorted by length (longest first) and cut into batches whose order is
    then shuffled: batches stay random, but padding to the longest member wastes little compute.
    """
    pool = batch_size * MEGABATCH
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    full = [b for b in batches if len(b) == batch_size]
    rest = [b for b in batches if len(b) < batch_size]
    return np.concatenate([full[i] for i in rng.permutation(len(full))] + rest) if batches else order


class RowStream:
    """The batches of one task: reshuffled passes over its ``size`` rows, ``batch_size`` rows at a time.

    Parameters: ``task`` its name, ``size`` its training rows, ``batch_size`` rows per batch, ``multiplier`` the
    passes that count as one multiplied pass (it scales ``effective_size`` and ``batches_per_pass``, which set the
    epoch length and the proportional weights), ``lengths`` tokens per row to group batches by length
    (:func:`length_grouped`). No short batch: the tail of a pass that cannot fill one comes back in the next pass
    (a task with fewer rows than ``batch_size`` gives all of them).
    """

    def __init__(
        self, task: str, size: int, batch_size: int, multiplier: int = 1, lengths: np.ndarray | None = None
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1 (every task needs training rows), got {size} for task {task!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size} for task {task!r}")
        if multiplier < 1:
            raise ValueError(f"multiplier must be an integer >= 1, got {multiplier} for task {task!r}")
        if lengths is not None and len(lengths) != size:
            raise ValueError(f"lengths must give one length per row ({size}), got {len(lengths)} for task {task!r}")
        self.task, self.size, self.batch_size = task, size, batch_size
        self.multiplier, self.lengths = multiplier, lengths
        self.effective_size = size * multiplier
        # batches in one multiplied pass: the natural unit of every mode's epoch length
        self.batches_per_pass = max(1, self.effective_size // batch_size)

    def batches(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Endless batches; the first pass is drawn from ``rng`` at the first ``next()``, not before."""
        order, pos = self._pass(rng), 0
        while True:
            if pos + self.batch_size > len(order) and pos > 0:
                # Start a new pass rather than emit a short batch; the unused tail comes back next pass.
                order, pos = self._pass(rng), 0
            yield order[pos : pos + self.batch_size]
            pos += self.batch_size

    def _pass(self, rng: np.random.Generator) -> np.ndarray:
        order = rng.permutation(self.size)
        return order if self.lengths is None else length_grouped(order, self.lengths, self.batch_size, rng)


Streams = dict[str, RowStream]


class Schedule(Protocol):
    """Which task(s) each step of an epoch holds (``streams`` in task order)."""

    one_task_per_step: bool

    def natural_steps(self, streams: Streams) -> int:
        """The epoch length when none is fixed, from the streams' ``batches_per_pass``."""
        ...

    def tasks(self, steps: int, streams: Streams, epoch: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
        """The task(s) of each step of ``epoch``: ``steps`` of them, or the natural number when ``steps`` is 0."""
        ...


class RoundRobin:
    """Every step takes one batch of every task (what gradient surgery needs: all tasks in each step).

    ``stop="longest"`` (oversample): the natural epoch is one multiplied pass over the largest task while smaller
    tasks cycle, so no data set is cut short the way ``zip`` over loaders would; ``"shortest"`` (undersample): it
    ends when the first multiplied set is exhausted.
    """

    one_task_per_step = False

    def __init__(self, stop: str = "longest") -> None:
        if stop not in ("longest", "shortest"):
            raise ValueError(f"stop must be 'longest' or 'shortest', got {stop!r}")
        self.stop = stop

    def natural_steps(self, streams: Streams) -> int:
        return (max if self.stop == "longest" else min)(s.batches_per_pass for s in streams.values())

    def tasks(self, steps: int, streams: Streams, epoch: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
        return [tuple(streams)] * (steps or self.natural_steps(streams))


class Sequential:
    """One task per step, task after task in task order (no task switch inside a block).

    Natural epoch: each task one multiplied pass (``n_i`` steps); ``steps > 0``: each task an equal share
    ``steps // T``, the first ``steps % T`` tasks one more.
    """

    one_task_per_step = True

    def natural_steps(self, streams: Streams) -> int:
        return sum(s.batches_per_pass for s in streams.values())

    def tasks(self, steps: int, streams: Streams, epoch: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
        if steps:
            share, extra = divmod(steps, len(streams))
            shares = [share + (i < extra) for i in range(len(streams))]
        else:
            shares = [s.batches_per_pass for s in streams.values()]
        return [(task,) for task, n in zip(streams, shares, strict=True) for _ in range(n)]


class Proportional:
    """One task per step, drawn at random with probability ∝ ``E_i^α`` (natural epoch: ``Σ_i n_i`` steps).

    Sampling by size (Sanh et al. 2019) gives every row the same chance per step, unlike round-robin, which visits
    small tasks far more often. Annealed sampling (Stickland & Murray 2019, "BERT and PALs") lowers α linearly from
    1 at epoch 0 to ``anneal_to`` at epoch ``epochs - 1`` (later epochs keep ``anneal_to``), so small tasks are not
    neglected late in training; the paper uses 0.2. With ``epochs == 1`` (the default) α stays 1.
    """

    one_task_per_step = True

    def __init__(self, epochs: int = 1, anneal_to: float = 1.0) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if not 0.0 <= anneal_to <= 1.0:
            raise ValueError(f"anneal_to must lie in [0, 1], got {anneal_to}")
        self.epochs, self.anneal_to = epochs, anneal_to

    def alpha(self, epoch: int) -> float:
        """The exponent on the effective sizes at ``epoch``."""
        if self.epochs == 1:
            return 1.0
        return 1.0 - (1.0 - self.anneal_to) * min(epoch, self.epochs - 1) / (self.epochs - 1)

    def probabilities(self, streams: Streams, epoch: int) -> dict[str, float]:
        """Each task's chance of holding a step of epoch ``epoch``."""
        weights = np.array([s.effective_size for s in streams.values()], dtype=float) ** self.alpha(epoch)
        return dict(zip(streams, (weights / weights.sum()).tolist(), strict=True))

    def natural_steps(self, streams: Streams) -> int:
        return sum(s.batches_per_pass for s in streams.values())

    def tasks(self, steps: int, streams: Streams, epoch: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
        tasks, p = list(streams), list(self.probabilities(streams, epoch).values())
        return [(tasks[i],) for i in rng.choice(len(tasks), size=steps or self.natural_steps(streams), p=p)]


class MultiTaskSampler:
    """Epoch plans from one :class:`RowStream` per task and a :class:`Schedule`.

    Parameters: ``streams`` one per task, in task order; ``schedule`` which task(s) each step holds; ``steps`` the
    steps per epoch (0: the schedule's natural length); ``seed`` with the epoch, seeds every draw of the plan.
    """

    def __init__(self, streams: Sequence[RowStream], schedule: Schedule, steps: int, seed: int) -> None:
        if not streams:
            raise ValueError("streams must hold at least one task, got none")
        self.streams = {s.task: s for s in streams}
        if len(self.streams) < len(streams):
            raise ValueError(f"streams must be of distinct tasks, got {[s.task for s in streams]}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0 (0: the mode's natural epoch length), got {steps}")
        self.schedule, self.fixed_steps, self.seed = schedule, steps, seed
        self.steps = steps or schedule.natural_steps(self.streams)
        self.batch_sizes = {task: s.batch_size for task, s in self.streams.items()}

    def epoch(self, epoch: int) -> list[Step]:
        """The plan of epoch ``epoch``: ``steps`` steps, each a list of ``(task, rows)``."""
        rng = np.random.default_rng([self.seed, epoch])
        tasks_per_step = self.schedule.tasks(self.fixed_steps, self.streams, epoch, rng)
        batches = {task: s.batches(rng) for task, s in self.streams.items()}
        return [[(task, next(batches[task])) for task in tasks] for tasks in tasks_per_step]


def schedules(epochs: int = 1, anneal_to: float = 0.2) -> dict[str, Schedule]:
    """The schedule of every sampling mode (``epochs`` and ``anneal_to``: the annealed one's α)."""
    return {
        "oversample": RoundRobin("longest"),
        "undersample": RoundRobin("shortest"),
        "sequential": Sequential(),
        "proportional": Proportional(),
        "annealed": Proportional(epochs, anneal_to),
    }


SAMPLING_MODES = tuple(schedules())
ONE_TASK_PER_STEP = frozenset(mode for mode, schedule in schedules().items() if schedule.one_task_per_step)


def make_sampler(
    mode: str,
    sizes: dict[str, int],
    batch_sizes: dict[str, int],
    steps: int,
    seed: int,
    lengths: dict[str, np.ndarray] | None = None,
    multipliers: dict[str, int] | None = None,
    epochs: int = 1,
    anneal_to: float = 0.2,
) -> MultiTaskSampler:
    """The sampler of ``mode`` (one of ``SAMPLING_MODES``) over tasks of ``sizes`` rows, in that order.

    ``lengths``: tokens per row, for length grouping; ``multipliers``: per task, missing = 1; ``epochs`` and
    ``anneal_to``: the annealed α. Every mode checks ``epochs`` and ``anneal_to``, since a run's params set both.
    """
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; allowed: {', '.join(SAMPLING_MODES)}")
    schedule = schedules(epochs, anneal_to)[mode]  # builds every schedule, so each checks its arguments
    if missing := sorted(set(sizes) - set(batch_sizes)):
        raise ValueError(f"batch_sizes must give every task a batch size, missing {missing}")
    multipliers = multipliers or {}
    if unknown := sorted(set(multipliers) - set(sizes)):
        raise ValueError(f"multipliers name unknown tasks {unknown}")
    streams = [
        RowStream(task, n, batch_sizes[task], multipliers.get(task, 1), None if lengths is None else lengths[task])
        for task, n in sizes.items()
    ]
    return MultiTaskSampler(streams, schedule, steps, seed)
