"""A generated family of hard but realistic Jacobians for the property suite (every method, every member).

Each member is a float64 ``[T, 40]`` matrix named ``<kind>-T<T>``: T from 2 to 8; kinds ``generic`` (Gaussian
rows), ``conflicting`` (row 1 pulled against row 0), ``dependent`` (the last row the sum of the first two, or for
T = 2 a negative multiple of the first), ``duplicate`` (the last row equal to the first), ``parallel`` (every row
nearly parallel to one direction, cosines ≈ 1 - 1e-6), ``zero_row`` (the last row 0), ``absent`` (the last row 0 beside
the dependent one before it: a task absent from a step while two others' gradients add up to a third's) and ``spread``
(row norms log-spaced over 1e-3 … 1e3). :data:`SCALES` are the overall scales the suite multiplies them by.
"""

from __future__ import annotations

import torch
from torch import Tensor

F64 = torch.float64
WIDTH = 40
TASK_COUNTS = (2, 3, 5, 8)
KINDS = ("generic", "conflicting", "dependent", "duplicate", "parallel", "zero_row", "spread", "absent")
SCALES = (1e-6, 1e-3, 1.0, 1e2, 1e4)


def member(kind: str, n_tasks: int, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(1000 * n_tasks + KINDS.index(kind) + seed)
    J = torch.randn(n_tasks, WIDTH, dtype=F64, generator=generator)
    if kind == "conflicting":
        J[1] = -0.8 * J[0] + 0.3 * J[1]
    elif kind == "dependent":
        J[-1] = J[0] + J[1] if n_tasks > 2 else -0.5 * J[0]
    elif kind == "duplicate":
        J[-1] = J[0]
    elif kind == "parallel":
        base = J[0] / J[0].norm()
        noise = J[1:] - (J[1:] @ base)[:, None] * base  # orthogonal to base
        noise = noise / noise.norm(dim=1, keepdim=True)
        angle = 2e-6**0.5  # cos = 1 - angle²/2 = 1 - 1e-6
        norms = torch.linspace(1.0, 3.0, n_tasks, dtype=F64)[:, None]
        J = norms * torch.cat(
            [base[None], torch.cos(torch.tensor(angle)) * base + torch.sin(torch.tensor(angle)) * noise]
        )
    elif kind == "zero_row":
        J[-1] = 0.0
    elif kind == "absent":
        J[-1] = 0.0
        if n_tasks > 3:
            J[-2] = J[0] + J[1]
        elif n_tasks == 3:
            J[1] = 2.0 * J[0]
    elif kind == "spread":
        J = J / J.norm(dim=1, keepdim=True) * torch.logspace(-3, 3, n_tasks, dtype=F64)[:, None]
    return J


def family() -> list[tuple[str, Tensor]]:
    """Every member, ``(name, J)``."""
    return [(f"{kind}-T{n}", member(kind, n)) for n in TASK_COUNTS for kind in KINDS]
