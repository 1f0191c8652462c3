"""The per-task gradients of one step, as rows of a [T, P] Jacobian over the shared parameters.

Before task i's backward, each shared parameter's ``.grad`` is pointed at a view of row i, so autograd accumulates
straight into the Jacobian: no per-step allocation of gradient buffers and no copy. Each task's loss is computed on
its own batch, so each backward touches only its own graph (no ``retain_graph``), and a task's head receives only
its own task's gradient. After aggregation, :meth:`JacobianStep.write` points ``.grad`` at the direction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mtbert.aggregators import Layout


class JacobianStep:
    """Rows of ``tasks`` (in that order) for the parameters ``shared`` (``(name, parameter)`` pairs)."""

    def __init__(self, shared: list[tuple[str, nn.Parameter]], tasks: tuple[str, ...], device: torch.device) -> None:
        self.names = [name for name, _ in shared]
        self.params = [p for _, p in shared]
        self.sizes = [p.numel() for p in self.params]
        self.index = {task: i for i, task in enumerate(tasks)}
        self.matrix = torch.zeros(len(tasks), sum(self.sizes), device=device)
        self.counts = torch.zeros(len(tasks), device=device)
        self._rows = [self._views(row) for row in self.matrix]

    @property
    def layout(self) -> Layout:
        """``(name, numel)`` of each shared parameter, in the column order of the matrix."""
        return list(zip(self.names, self.sizes, strict=True))

    def zero(self) -> None:
        """Start a step: every row and count at zero (a task absent from the step keeps a zero row)."""
        self.matrix.zero_()
        self.counts.zero_()

    def backward(self, task: str, loss: Tensor, count: int) -> None:
        """Add the gradient of ``loss`` (task ``task``'s, on ``count`` rows) to its row of the matrix."""
        i = self.index[task]
        for p, view in zip(self.params, self._rows[i], strict=True):
            p.grad = view
        # No graph at all: a parameter-free head (bi-cosine) on a frozen encoder has nothing to train.
        if loss.requires_grad:
            loss.backward()
        self.counts[i] += count

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
