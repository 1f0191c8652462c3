"""Properties every epoch plan of :mod:`mtbert.sampling` has, whatever the sampling mode."""

from __future__ import annotations

import numpy as np

from mtbert.sampling import Step


def assert_valid_plan(
    plan: list[Step], sizes: dict[str, int], batch_sizes: dict[str, int], steps: int | None = None
) -> None:
    """``plan`` (of ``steps`` steps when given) only holds known tasks, each at most once per step and in the order
    of ``sizes``; every batch is full (a task smaller than its batch gives all its rows), of integer row indices in
    range, and no row comes back within a pass over the task's rows."""
    if steps is not None:
        assert len(plan) == steps
    order = list(sizes)
    batches: dict[str, list[np.ndarray]] = {task: [] for task in sizes}
    for step in plan:
        tasks = [task for task, _ in step]
        assert tasks, "a step holds at least one task"
        assert set(tasks) <= set(sizes), f"unknown tasks {set(tasks) - set(sizes)}"
        assert tasks == sorted(set(tasks), key=order.index), f"tasks repeated or out of order: {tasks}"
        for task, rows in step:
            assert np.issubdtype(rows.dtype, np.integer)
            assert len(rows) == min(batch_sizes[task], sizes[task]), f"{task}: a batch of {len(rows)} rows"
            assert all(0 <= r < sizes[task] for r in rows.tolist()), f"{task}: rows out of range"
            batches[task].append(rows)
    for task, drawn in batches.items():
        per_pass = max(1, sizes[task] // batch_sizes[task])  # full batches in one pass over the real rows
        for start in range(0, len(drawn), per_pass):
            seen = np.concatenate(drawn[start : start + per_pass]).tolist()
            assert len(seen) == len(set(seen)), f"{task}: a row repeats within the pass from batch {start}"
