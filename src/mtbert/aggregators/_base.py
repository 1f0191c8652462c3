"""Base classes shared by all gradient aggregators.

An aggregator maps a Jacobian ``J`` of shape ``[T, P]`` (row ``i`` is the gradient of task ``i``'s
loss with respect to the ``P`` shared parameters, flattened) to an update direction of shape
``[P]``. The interface follows torchjd's ``aggregation`` package, extended with per-task sample
counts, a parameter layout (for methods that group columns) and per-step diagnostics.

Performance contract (``P`` is ~22M, ``T`` is small): the Gramian ``J Jᵀ`` is computed exactly once
per call, in float64 whatever ``J``'s dtype (block by block, :func:`~mtbert.aggregators._linalg.gramian`), all
per-pair logic runs on a ``[T, T]`` CPU copy of it (one device sync per call: the one host read-back a step needs
for these methods), and the output is produced by a single ``w @ J`` (or one per column segment for grouped
methods) without materialising extra ``[T, P]`` copies.

Numerics contract: every tolerance is relative to the Gramian's own scale, and the rank of ``J`` is decided at the
precision of ``J``'s dtype (:func:`~mtbert.aggregators._linalg.rank_rtol`), so float32 rounding is not signal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from . import _linalg

Layout = list[tuple[str, int]]


@dataclass(frozen=True)
class Stat:
    """What one key of ``last_stats`` holds: its ``shape`` (``"task"`` ``[T]``, ``"pair"`` ``[T, T]`` for the ordered
    pairs ``(i, j)``, ``"group_task"`` ``[K, T]`` per group of columns and task, ``"scalar"`` ``[]``) and its
    meaning, ``doc`` (one line, for the docs and the logs)."""

    shape: Literal["task", "pair", "group_task", "scalar"]
    doc: str


_MAX_SEED = 2**63 - 1


class NonFiniteJacobian(ValueError):
    """A row of ``J`` (or a task's loss) holds an inf or NaN (seen on the CPU copies the method reads anyway)."""

    def __init__(self, rows: list[int], message: str = "") -> None:
        super().__init__(message or f"J has non-finite values in row(s) {rows}")
        self.rows = rows


def check_finite(gramian_cpu: Tensor) -> None:
    """Raise :class:`NonFiniteJacobian` naming the rows of ``J`` that are not finite (their diagonal entry is not)."""
    finite = torch.isfinite(gramian_cpu.diagonal())
    if not bool(finite.all()):
        raise NonFiniteJacobian(torch.nonzero(~finite).flatten().tolist())


def check_seed(seed: Any) -> int:
    """Returns ``seed`` if it is a valid generator seed, raises ``ValueError`` naming it otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"Option `seed` must be an integer in [0, 2**63 - 1]. Found seed={seed!r}.")
    return seed


def draw_orders(n_tasks: int, generator: torch.Generator) -> list[list[int]]:
    """Draws, for each task ``i``, a uniformly random order of the other tasks ``j != i``.

    This is the only place where PCGrad-style methods consume randomness, so tests can reproduce
    the orders used by an aggregator by calling it on a generator in the same state.
    """
    orders = []
    for i in range(n_tasks):
        others = [j for j in range(n_tasks) if j != i]
        perm = torch.randperm(len(others), generator=generator).tolist()
        orders.append([others[k] for k in perm])
    return orders


class Aggregator(nn.Module, ABC):
    """Base class of all aggregators.

    Call it as ``aggregator(J, counts, losses)``: ``J`` is a float Jacobian of shape ``[T, P]``,
    ``counts`` an optional ``[T]`` tensor with the number of samples of each task in this step,
    ``losses`` an optional ``[T]`` tensor with each task's loss (only some methods use them). The
    result has shape ``[P]``, the dtype and device of ``J``.

    After each call:

    - ``last_gramian`` is the ``[T, T]`` Gramian ``J Jᵀ`` of that call (float64, on ``J``'s device),
      computed once and reused by the method;
    - ``last_stats`` is a dict of method-specific per-step diagnostics (CPU tensors), each key described by a
      :class:`Stat` in the class's ``stats`` (the training loop logs the per-epoch mean of each).

    Subclasses implement :meth:`_aggregate`. Stateful subclasses override :meth:`reset` and keep
    their state in registered buffers so that ``state_dict``/``load_state_dict`` round trips.
    """

    #: Whether ``forward`` requires ``counts``.
    requires_counts: bool = False
    #: Whether ``forward`` requires ``losses`` (loss-weighting methods: uncertainty, FAMO).
    requires_losses: bool = False
    #: Whether the output is a fixed linear combination of the rows, so a step may hold any subset of the tasks
    #: (one task per step included); methods that compare task gradients need every task in each step.
    linear: bool = False
    #: Buffers whose size depends on the run (e.g. ``[T]`` state created at :meth:`bind`): loading a state dict
    #: resizes them to the saved shape first, so a resumed run continues exactly.
    resizable_buffers: tuple[str, ...] = ()
    #: The shape and meaning of each key of ``last_stats`` (a test checks that every key the method sets is here).
    stats: ClassVar[dict[str, Stat]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.last_gramian: Tensor | None = None
        self.last_stats: dict[str, Tensor] = {}
        #: ``[T]`` factors for each task's own parameters' gradients (heads, PALs) after the last call: a method that
        #: weighs whole task losses weighs them too; None (the default) leaves them as they are.
        self.own_weights: Tensor | None = None

    def bind(self, layout: Layout, n_tasks: int) -> None:
        """Informs the aggregator of the shared parameters' ``(name, numel)`` in the column order of
        ``J`` and of the number of tasks. Called once before training; checks the options against ``n_tasks``."""
        _check_layout(layout)
        self.check_tasks(n_tasks)

    def check_tasks(self, n_tasks: int) -> None:
        """Raise ``ValueError`` naming the option if the options do not fit ``n_tasks`` tasks (e.g. one loss weight
        per task). :meth:`bind` calls it, and so does the params check before any stage runs. Default: any count."""
        _check_n_tasks(n_tasks)

    def reset(self) -> None:
        """Clears the state of stateful methods (a no-op for stateless ones)."""

    @torch.no_grad()
    def forward(self, J: Tensor, counts: Tensor | None = None, losses: Tensor | None = None) -> Tensor:
        self._check_inputs(J, counts)
        if self.requires_losses and losses is not None:  # only these read them (a host copy)
            self.read_losses(_checked_losses(losses, J.shape[0]))
        elif self.requires_losses:
            raise ValueError(
                f"{type(self).__name__} needs `losses` (each task's loss in this step): call it as "
                "aggregator(J, counts, losses)."
            )
        gramian = self._compute_gramian(J)
        self.last_gramian = gramian
        self.last_stats = {}
        return self._aggregate(J, gramian, counts)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: object) -> None:
        for name in self.resizable_buffers:
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def read_losses(self, losses: Tensor) -> None:
        """Receives the step's ``[T]`` task losses (float64, CPU) before aggregation; loss-weighting methods keep
        what they need in buffers. Default: ignored."""

    def _compute_gramian(self, J: Tensor) -> Tensor:
        """Computes ``J Jᵀ`` in float64 (the only full pass over ``J`` besides the output). Grouped methods
        override it to build per-group Gramians in the same pass and return their sum."""
        return _linalg.gramian(J)

    @abstractmethod
    def _aggregate(self, J: Tensor, gramian: Tensor, counts: Tensor | None) -> Tensor:
        """Returns the aggregation of ``J`` given its (already computed) Gramian."""

    def _check_inputs(self, J: Tensor, counts: Tensor | None) -> None:
        if J.ndim != 2:
            raise ValueError(f"J must be a matrix of shape [T, P]. Found J.shape={tuple(J.shape)}.")
        if not J.is_floating_point():
            raise ValueError(f"J must be a floating point tensor. Found J.dtype={J.dtype}.")
        if J.shape[0] == 0:
            raise ValueError("J must have at least one row (task).")
        if counts is None:
            if self.requires_counts:
                raise ValueError(
                    f"{type(self).__name__} needs `counts` (the number of samples of each task in "
                    "this step): call it as aggregator(J, counts)."
                )
            return
        if counts.ndim != 1 or counts.shape[0] != J.shape[0]:
            raise ValueError(
                f"counts must have shape [T]=[{J.shape[0]}] matching J's rows. "
                f"Found counts.shape={tuple(counts.shape)}."
            )


class GramianWeightedAggregator(Aggregator):
    """Aggregator whose output is ``w @ J`` for a weight vector ``w = weights(G, counts)`` computed
    from the Gramian ``G = J Jᵀ`` only.

    Subclasses implement :meth:`weights`, which receives the Gramian as a float64 CPU tensor and the rank
    tolerance of ``J``'s precision, and returns a ``[T]`` float64 CPU tensor. The weights are exposed as
    ``last_stats["weights"]``.
    """

    stats: ClassVar[dict[str, Stat]] = {
        "weights": Stat("task", "the task's weight in the direction (direction = Σ_i weights_i g_i)"),
    }

    @abstractmethod
    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        """Returns the ``[T]`` weights given the float64 CPU Gramian (and optional counts); eigenvalues of the
        Gramian at or below ``rtol`` × the largest are rounding of ``J``'s dtype
        (:func:`~mtbert.aggregators._linalg.rank_rtol`)."""

    def _aggregate(self, J: Tensor, gramian: Tensor, counts: Tensor | None) -> Tensor:
        gramian_cpu = gramian.detach().to(device="cpu", dtype=torch.float64)  # the one read-back of the step
        check_finite(gramian_cpu)
        counts_cpu = None if counts is None else counts.detach().to(device="cpu", dtype=torch.float64)
        w = self.weights(gramian_cpu, counts_cpu, _linalg.rank_rtol(J.dtype, J.shape[0], J.shape[1]))
        self.last_stats["weights"] = w
        return _linalg.combine(w, J)


class RandomOrderMixin:
    """Owns a CPU ``torch.Generator`` seeded from ``seed`` whose state lives in the persistent
    buffer ``rng_state``, so that results do not depend on the global RNG and a resumed run (via
    ``load_state_dict``) continues with the same random orders."""

    rng_state: Tensor
    seed: int

    def _init_rng(self, seed: int) -> None:
        self.seed = check_seed(seed)
        generator = torch.Generator(device="cpu")
        generator.manual_seed(self.seed)
        self.register_buffer("rng_state", generator.get_state())

    def _reset_rng(self) -> None:
        generator = torch.Generator(device="cpu")
        generator.manual_seed(self.seed)
        self.rng_state.copy_(generator.get_state())

    def _draw_orders(self, n_tasks: int, n_draws: int = 1) -> list[list[list[int]]]:
        """Draws ``n_draws`` independent sets of per-task orders and advances the stored state."""
        generator = torch.Generator(device="cpu")
        generator.set_state(self.rng_state.detach().cpu().contiguous())
        orders = [draw_orders(n_tasks, generator) for _ in range(n_draws)]
        self.rng_state.copy_(generator.get_state())
        return orders


def _checked_losses(losses: Tensor, n_tasks: int) -> Tensor:
    if losses.shape != (n_tasks,):
        raise ValueError(f"losses must have shape [T]=[{n_tasks}]. Found losses.shape={tuple(losses.shape)}.")
    values = losses.detach().to(device="cpu", dtype=torch.float64)
    finite = torch.isfinite(values)
    if not finite.all():
        rows = torch.nonzero(~finite).flatten().tolist()
        raise NonFiniteJacobian(rows, f"losses must be finite. Found losses={values.tolist()}.")
    return values


def _check_layout(layout: Layout) -> None:
    for entry in layout:
        if (
            not isinstance(entry, tuple | list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or isinstance(entry[1], bool)
            or not isinstance(entry[1], int)
            or entry[1] < 0
        ):
            raise ValueError(f"layout entries must be (name: str, numel: int >= 0). Found {entry!r}.")


def _check_n_tasks(n_tasks: int) -> None:
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
        raise ValueError(f"n_tasks must be a positive integer. Found n_tasks={n_tasks!r}.")
