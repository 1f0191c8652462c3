"""Which rows of which task each training step uses.

A sampler turns task sizes into an epoch *plan*: a list of steps, each a list of ``(task, rows)``. Plans are
pure functions of ``(seed, epoch)``, so a resumed run rebuilds the same plan and skips the steps it did.

Sampling modes (see :func:`make_sampler`). Let ``E_i`` be task i's rows times its dataset multiplier (the
"3-1-4" recipe replays SST 3x and STS 4x) and ``n_i = max(1, E_i // b_i)`` its batches per multiplied pass:

- ``oversample``: every step holds one batch of every task; natural epoch: ``max_i n_i`` steps, smaller tasks cycle.
- ``undersample``: every step holds one batch of every task; natural epoch: ``min_i n_i`` steps, i.e. it ends when
  the first multiplied set is exhausted.
- ``sequential``: one task per step, all of task 1's steps, then task 2's, ... in the order of ``sizes``;
  natural epoch: ``n_i`` steps per task.
- ``proportional``: one task per step, drawn with probability ∝ ``E_i``; natural epoch: ``Σ_i n_i`` steps.
- ``annealed``: like proportional with probability ∝ ``E_i^α``, α going linearly from 1 at the first epoch to
  ``anneal_to`` at the last (Stickland & Murray 2019, "BERT and PALs", annealed sampling).

For every mode, ``steps > 0`` fixes the epoch length to exactly ``steps`` (sequential: an equal share per task, the
first ``steps % T`` tasks one more); ``steps == 0`` uses the natural length. Rows come from one stream per task:
reshuffled passes over the task's real rows (a multiplier of m means m such passes, not m copies shuffled together,
so a row never repeats within a pass), never a short batch, cycling when the data runs out.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

Step = list[tuple[str, np.ndarray]]

MEGABATCH = 50  # batches per length-sorted pool, as in HF Trainer's group_by_length

SAMPLING_MODES = ("oversample", "undersample", "sequential", "proportional", "annealed")
ONE_TASK_PER_STEP = frozenset({"sequential", "proportional", "annealed"})  # steps that hold a single task


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


class Sampler:
    """Per-task row streams; a subclass decides which task(s) each step holds (:meth:`_tasks_per_step`).

    Parameters: ``sizes`` training rows per task (its order is the task order), ``batch_size`` rows per batch
    (one for all tasks or per task), ``seed``, ``lengths`` per-row token lengths for length grouping, and
    ``multipliers`` dataset multipliers (missing task = 1). Subclasses set ``steps``, the steps per epoch.
    """

    steps: int

    def __init__(
        self,
        sizes: dict[str, int],
        batch_size: int | dict[str, int],
        seed: int,
        lengths: dict[str, np.ndarray] | None = None,
        multipliers: dict[str, int] | None = None,
    ) -> None:
        if not sizes:
            raise ValueError("a sampler needs at least one task, got no sizes")
        if any(n < 1 for n in sizes.values()):
            raise ValueError(f"every task needs training rows, got sizes {sizes}")
        self.batch_sizes = batch_size if isinstance(batch_size, dict) else dict.fromkeys(sizes, batch_size)
        if not set(sizes) <= set(self.batch_sizes) or any(self.batch_sizes[t] < 1 for t in sizes):
            raise ValueError(f"every task needs a batch size >= 1, got {self.batch_sizes} for tasks {list(sizes)}")
        multipliers = multipliers or {}
        if not set(multipliers) <= set(sizes):
            raise ValueError(f"multipliers name unknown tasks {sorted(set(multipliers) - set(sizes))}")
        self.multipliers = {task: multipliers.get(task, 1) for task in sizes}
        if any(m < 1 for m in self.multipliers.values()):
            raise ValueError(f"dataset multipliers must be integers >= 1, got {multipliers}")
        self.sizes = sizes
        self.seed = seed
        self.lengths = lengths
        self.effective = {task: n * self.multipliers[task] for task, n in sizes.items()}
        # batches in one multiplied pass: the natural unit of every mode's epoch length
        self.batches_per_pass = {t: max(1, e // self.batch_sizes[t]) for t, e in self.effective.items()}

    def epoch(self, epoch: int) -> list[Step]:
        """The plan of epoch ``epoch``: ``steps`` steps, each a list of ``(task, rows)``."""
        rng = np.random.default_rng([self.seed, epoch])
        schedule = self._tasks_per_step(rng, epoch)
        streams = {task: self._stream(rng, task) for task in self.sizes}
        return [[(task, next(streams[task])) for task in tasks] for tasks in schedule]

    def _tasks_per_step(self, rng: np.random.Generator, epoch: int) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def _pass(self, rng: np.random.Generator, task: str) -> np.ndarray:
        order = rng.permutation(self.sizes[task])
        if self.lengths is None:
            return order
        return length_grouped(order, self.lengths[task], self.batch_sizes[task], rng)

    def _stream(self, rng: np.random.Generator, task: str) -> Iterator[np.ndarray]:
        order, pos, size = self._pass(rng, task), 0, self.batch_sizes[task]
        while True:
            if pos + size > len(order) and pos > 0:
                # Start a new pass rather than emit a short batch; the unused tail comes back next pass.
                order, pos = self._pass(rng, task), 0
            yield order[pos : pos + size]
            pos += size


def _check_steps(steps: int) -> int:
    if steps < 0:
        raise ValueError(f"steps must be >= 0 (0: the mode's natural epoch length), got {steps}")
    return steps


class RoundRobinSampler(Sampler):
    """Every step takes one batch from every task (what gradient surgery needs: all tasks in each step).

    The epoch lasts ``steps`` steps; with ``steps=0`` it depends on ``stop``: ``"longest"`` (oversample, default)
    makes one multiplied pass over the largest task while smaller tasks cycle, reshuffled at each pass, so no data
    set is cut short the way ``zip`` over loaders would; ``"shortest"`` (undersample) ends when the first
    multiplied set is exhausted. With ``lengths`` given, batches are grouped by length (see :func:`length_grouped`).
    """

    def __init__(
        self,
        sizes: dict[str, int],
        batch_size: int | dict[str, int],
        steps: int,
        seed: int,
        lengths: dict[str, np.ndarray] | None = None,
        *,
        multipliers: dict[str, int] | None = None,
        stop: str = "longest",
    ) -> None:
        super().__init__(sizes, batch_size, seed, lengths, multipliers)
        if stop not in ("longest", "shortest"):
            raise ValueError(f"stop must be 'longest' or 'shortest', got {stop!r}")
        self.stop = stop
        natural = max if stop == "longest" else min
        self.steps = _check_steps(steps) or natural(self.batches_per_pass.values())

    def _tasks_per_step(self, rng: np.random.Generator, epoch: int) -> list[tuple[str, ...]]:
        return [tuple(self.sizes)] * self.steps


class SequentialSampler(Sampler):
    """One task per step, task after task in the order of ``sizes`` (no task switch inside a block).

    With ``steps=0`` each task gets one multiplied pass (``n_i`` steps); with ``steps > 0`` each task gets an equal
    share ``steps // T``, the first ``steps % T`` tasks one more.
    """

    def __init__(
        self,
        sizes: dict[str, int],
        batch_size: int | dict[str, int],
        steps: int,
        seed: int,
        lengths: dict[str, np.ndarray] | None = None,
        *,
        multipliers: dict[str, int] | None = None,
    ) -> None:
        super().__init__(sizes, batch_size, seed, lengths, multipliers)
        if _check_steps(steps):
            share, extra = divmod(steps, len(sizes))
            self.shares = {task: share + (i < extra) for i, task in enumerate(sizes)}
        else:
            self.shares = dict(self.batches_per_pass)
        self.steps = sum(self.shares.values())

    def _tasks_per_step(self, rng: np.random.Generator, epoch: int) -> list[tuple[str, ...]]:
        return [(task,) for task, share in self.shares.items() for _ in range(share)]


class ProportionalSampler(Sampler):
    """One task per step, drawn at random with probability ∝ ``E_i^alpha(epoch)`` (``alpha`` = 1 here).

    Sampling by size (Sanh et al. 2019; Stickland & Murray 2019) gives every row the same chance per step, unlike
    round-robin, which visits small tasks far more often. ``steps=0``: ``Σ_i n_i`` steps, one multiplied pass's
    worth of batches per task in expectation.
    """

    def __init__(
        self,
        sizes: dict[str, int],
        batch_size: int | dict[str, int],
        steps: int,
        seed: int,
        lengths: dict[str, np.ndarray] | None = None,
        *,
        multipliers: dict[str, int] | None = None,
    ) -> None:
        super().__init__(sizes, batch_size, seed, lengths, multipliers)
        self.steps = _check_steps(steps) or sum(self.batches_per_pass.values())

    def alpha(self, epoch: int) -> float:
        """The exponent on the effective sizes at ``epoch``."""
        return 1.0

    def probabilities(self, epoch: int) -> dict[str, float]:
        """Each task's chance of holding a step of epoch ``epoch``."""
        weights = np.array(list(self.effective.values()), dtype=float) ** self.alpha(epoch)
        return dict(zip(self.sizes, (weights / weights.sum()).tolist(), strict=True))

    def _tasks_per_step(self, rng: np.random.Generator, epoch: int) -> list[tuple[str, ...]]:
        tasks = list(self.sizes)
        drawn = rng.choice(len(tasks), size=self.steps, p=list(self.probabilities(epoch).values()))
        return [(tasks[i],) for i in drawn]


class AnnealedSampler(ProportionalSampler):
    """Annealed sampling (Stickland & Murray 2019, "BERT and PALs"): p_i ∝ E_i^α.

    α = 1 − (1 − ``anneal_to``) · e / (``epochs`` − 1) at epoch e: sampling starts proportional to size and ends
    closer to uniform (the paper uses ``anneal_to`` = 0.2), so small tasks are not neglected late in training.
    α = 1 when ``epochs`` == 1; epochs past the last keep α = ``anneal_to``.
    """

    def __init__(
        self,
        sizes: dict[str, int],
        batch_size: int | dict[str, int],
        steps: int,
        seed: int,
        lengths: dict[str, np.ndarray] | None = None,
        *,
        multipliers: dict[str, int] | None = None,
        epochs: int = 1,
        anneal_to: float = 0.2,
    ) -> None:
        super().__init__(sizes, batch_size, steps, seed, lengths, multipliers=multipliers)
        if not 0.0 <= anneal_to <= 1.0:
            raise ValueError(f"anneal_to must lie in [0, 1], got {anneal_to}")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        self.epochs = epochs
        self.anneal_to = anneal_to

    def alpha(self, epoch: int) -> float:
        if self.epochs == 1:
            return 1.0
        return 1.0 - (1.0 - self.anneal_to) * min(epoch, self.epochs - 1) / (self.epochs - 1)


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
) -> Sampler:
    """The sampler of ``mode`` (one of ``SAMPLING_MODES``; see the module docstring for what each does)."""
    if mode not in SAMPLING_MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; allowed: {', '.join(SAMPLING_MODES)}")
    if not 0.0 <= anneal_to <= 1.0:
        raise ValueError(f"anneal_to must lie in [0, 1], got {anneal_to}")
    args = (sizes, batch_sizes, steps, seed, lengths)
    if mode in ("oversample", "undersample"):
        stop = "longest" if mode == "oversample" else "shortest"
        return RoundRobinSampler(*args, multipliers=multipliers, stop=stop)
    if mode == "sequential":
        return SequentialSampler(*args, multipliers=multipliers)
    if mode == "proportional":
        return ProportionalSampler(*args, multipliers=multipliers)
    return AnnealedSampler(*args, multipliers=multipliers, epochs=epochs, anneal_to=anneal_to)
