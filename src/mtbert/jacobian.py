"""The gradients of one step in one flat buffer: the [T, P] Jacobian over the shared parameters, the task-specific
parameters' gradients (heads, PALs) and the tasks' losses.

Before task i's backward, each shared parameter's ``.grad`` is pointed at a view of row i, so autograd accumulates
straight into the Jacobian: no per-step allocation of gradient buffers and no copy. Each task-specific parameter
(head, PAL) belongs to one task, so it receives only its task's gradient; :meth:`JacobianStep.reduce` copies those
into the buffer with a flag for each parameter that got one. Each task's loss is computed on its own batch, so each
backward touches only its own graph (no ``retain_graph``). With several processes, one ``all_reduce`` of the whole
buffer sums their shares (:mod:`mtbert.distributed`); a parameter no process used keeps ``.grad = None``, so the
optimizer skips it as it would in one process. With fp16, :meth:`JacobianStep.unscale` divides by the loss scale.
After aggregation, :meth:`JacobianStep.write` points the shared parameters' ``.grad`` at the direction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mtbert.aggregators import Layout
from mtbert.distributed import Group


class JacobianStep:
    """Rows of ``tasks`` (in that order) for the parameters ``shared`` (``(name, parameter)`` pairs); ``own``: the
    other trainable parameters, each used by a single task."""

    def __init__(
        self,
        shared: list[tuple[str, nn.Parameter]],
        tasks: tuple[str, ...],
        device: torch.device,
        own: dict[str, list[nn.Parameter]] | None = None,
    ) -> None:
        self.names = [name for name, _ in shared]
        self.params = [p for _, p in shared]
        self.sizes = [p.numel() for p in self.params]
        self.index = {task: i for i, task in enumerate(tasks)}
        self.own = [p for params in (own or {}).values() for p in params]
        self._own_task = [self.index[task] for task, params in (own or {}).items() for _ in params]
        width, n_tasks = sum(self.sizes), len(tasks)
        own_sizes = [p.numel() for p in self.own]
        self.buffer = torch.zeros(n_tasks * width + sum(own_sizes) + n_tasks + len(self.own), device=device)
        parts = self.buffer.split([n_tasks * width, sum(own_sizes), n_tasks, len(self.own)])
        self.matrix = parts[0].view(n_tasks, width)
        self._gradients = self.buffer[: n_tasks * width + sum(own_sizes)]  # what the loss scale multiplies
        self._own_grads = [view.view_as(p) for view, p in zip(parts[1].split(own_sizes), self.own, strict=True)]
        self.losses = parts[2]  # each task's loss, weighted by this process's share
        self._used = parts[3]  # 1 for each task-specific parameter that received a gradient
        self.counts = torch.zeros(n_tasks)  # each task's examples in the (global) step: on the CPU, the plan says them
        self._rows = [self._views(row) for row in self.matrix]

    @property
    def layout(self) -> Layout:
        """``(name, numel)`` of each shared parameter, in the column order of the matrix."""
        return list(zip(self.names, self.sizes, strict=True))

    def zero(self) -> None:
        """Start a step: every row, gradient, loss and count at zero (a task absent from the step keeps a zero row)."""
        self.buffer.zero_()
        self.counts.zero_()
        for p in self.own:
            p.grad = None

    def backward(self, task: str, loss: Tensor, count: int, share: float = 1.0, factor: float = 1.0) -> None:
        """Add ``share`` × the gradient of ``factor`` × ``loss`` to ``task``'s row. ``loss``: the task's mean loss on
        this process's rows; ``share``: their fraction of the ``count`` rows the task has in the step over all
        processes; ``factor``: the task's loss weight times the fp16 loss scale (undone by :meth:`unscale`)."""
        i = self.index[task]
        for p, view in zip(self.params, self._rows[i], strict=True):
            p.grad = view
        # No graph at all: a parameter-free head (bi-cosine) on a frozen encoder has nothing to train.
        if loss.requires_grad:
            (loss * (share * factor)).backward()
        self.losses[i] += share * loss.detach().float()
        self.count(task, count)

    def count(self, task: str, count: int) -> None:
        """``task`` has ``count`` rows in the step over all processes (called alone: none of them on this one)."""
        self.counts[self.index[task]] = count

    def reduce(self, group: Group) -> None:
        """Sum every process's shares: rows, task-specific gradients and losses become the global batch's. With
        several processes the flags of which task-specific parameters received a gradient are read back (a
        parameter used on another process only must get one here too); one process knows them already."""
        used = [p.grad is not None for p in self.own]
        for p, view, got in zip(self.own, self._own_grads, used, strict=True):
            if got:
                view.copy_(p.grad)
        if group.world > 1:
            self._used.copy_(torch.tensor(used, dtype=self._used.dtype))
            group.all_reduce_(self.buffer)
            used = [flag > 0 for flag in self._used.tolist()]
        for p, view, got in zip(self.own, self._own_grads, used, strict=True):
            p.grad = view if got else None

    def weigh_own(self, weights: Tensor | None) -> None:
        """Multiply each task's own parameters' gradients by that task's weight (a loss-weighting method's
        ``own_weights``); None: leave them."""
        if weights is None:
            return
        factors = weights.tolist()
        for p, task in zip(self.own, self._own_task, strict=True):
            if p.grad is not None:
                p.grad.mul_(factors[task])

    def unscale(self, scale: float) -> bool:
        """Undo the loss scale; whether every gradient is finite (the same answer on every process after
        :meth:`reduce`: an inf or NaN on one process makes the sum non-finite everywhere)."""
        if scale != 1.0:
            self._gradients.div_(scale)
        return bool(torch.isfinite(self.buffer).all())

    def write(self, direction: Tensor | None) -> None:
        """Point each shared parameter's ``.grad`` at its slice of ``direction``; None: no gradient (the
        optimizer then skips them, weight decay included)."""
        if direction is None:
            for p in self.params:
                p.grad = None
            return
        for p, view in zip(self.params, self._views(direction), strict=True):
            p.grad = view

    def _views(self, flat: Tensor) -> list[Tensor]:
        return [v.view_as(p) for v, p in zip(flat.split(self.sizes), self.params, strict=True)]
