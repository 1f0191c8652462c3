"""Property asserts shared by the aggregator tests."""

from __future__ import annotations

import torch
from torch import Tensor


def assert_min_norm_optimality(J: Tensor, d: Tensor, active: Tensor, tol: float) -> None:
    """Asserts the KKT conditions of ``d`` as the minimum-norm point of the convex hull of the rows ``g_i`` of ``J``
    (Désidéri 2012; Sener & Koltun 2018): ``g_i · d ≥ ||d||²`` for every row, with equality on the rows of the face
    holding ``d`` (``active``: the rows with a positive weight in the exact solution), both up to ``tol · ||d||²``."""
    squared_norm = (d @ d).item()
    assert squared_norm > 0.0, "degenerate case: 0 is in the hull"
    products = J @ d
    assert bool((products >= squared_norm * (1.0 - tol)).all()), f"g_i·d={products.tolist()}, ||d||²={squared_norm}"
    gaps = (products[active] - squared_norm).abs()
    assert bool((gaps <= tol * squared_norm).all()), f"active rows: g_i·d={products[active].tolist()} != ||d||²"


def conflicting(seed: int, tasks: int = 3, width: int = 20) -> Tensor:
    """A random float64 [tasks, width] Jacobian whose second row is pulled against the first (a conflicting pair)."""
    J = torch.randn(tasks, width, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    J[1] = -0.8 * J[0] + 0.3 * J[1]
    return J


def absent_task(seed: int, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor, int]:
    """``(rows, full, k)``: rows g, 3g, h, -h/2 (two dependences) in ``dtype``, and the same with a zero row inserted
    at ``k`` (a task absent from the step), ``k`` drawn from ``seed`` too."""
    generator = torch.Generator().manual_seed(seed)
    g, h = torch.randn(2, 6, generator=generator, dtype=torch.float64)
    rows = torch.stack([g, 3 * g, h, -0.5 * h]).to(dtype)
    k = int(torch.randint(5, (1,), generator=generator))
    full = torch.zeros(5, 6, dtype=dtype)
    full[[i for i in range(5) if i != k]] = rows
    return rows, full, k
