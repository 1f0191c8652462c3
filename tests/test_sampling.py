"""Tests for mtbert.sampling: which task and which rows each training step uses."""

from __future__ import annotations

import numpy as np
import pytest

from mtbert.sampling import RoundRobinSampler


def draws(plan, task: str) -> list[np.ndarray]:
    """The batches of ``task`` in step order."""
    out = []
    for step in plan:
        out += [rows for name, rows in step if name == task]
    return out


def same_plan(p, q) -> bool:
    return len(p) == len(q) and all(
        [n for n, _ in s] == [n for n, _ in t]
        and all(np.array_equal(r, u) for (_, r), (_, u) in zip(s, t, strict=True))
        for s, t in zip(p, q, strict=True)
    )


def test_each_step_draws_one_full_batch_from_every_task_in_order():
    sizes = {"sst": 20, "para": 7, "sts": 12}
    plan = RoundRobinSampler(sizes, batch_size=4, steps=6, seed=0).epoch(0)
    assert len(plan) == 6
    for step in plan:
        assert [task for task, _ in step] == ["sst", "para", "sts"]
        for task, rows in step:
            assert len(rows) == 4
            assert len(set(rows.tolist())) == 4  # no row twice in one batch
            assert all(0 <= r < sizes[task] for r in rows)
            assert np.issubdtype(rows.dtype, np.integer)


def test_steps_sets_the_epoch_length():
    for steps in (1, 3, 17):
        assert len(RoundRobinSampler({"a": 8, "b": 100}, 4, steps, seed=0).epoch(0)) == steps


def test_steps_zero_is_one_pass_over_the_largest_task():
    sampler = RoundRobinSampler({"small": 6, "large": 40, "mid": 13}, batch_size=4, steps=0, seed=3)
    plan = sampler.epoch(0)
    assert sampler.steps == len(plan) == 10
    large = np.concatenate(draws(plan, "large"))
    assert sorted(large.tolist()) == list(range(40))  # every row exactly once


def test_steps_zero_never_repeats_a_row_of_the_largest_task_when_size_is_not_a_multiple_of_the_batch():
    plan = RoundRobinSampler({"large": 10, "small": 3}, batch_size=4, steps=0, seed=0).epoch(0)
    large = draws(plan, "large")
    assert all(len(rows) == 4 for rows in large)
    seen = np.concatenate(large).tolist()
    assert len(seen) == len(set(seen))  # one pass: no row twice
    assert len(seen) > 10 - 4  # and no more than a short batch's worth left out


def test_smaller_tasks_cycle_through_every_row_before_any_repeat():
    plan = RoundRobinSampler({"large": 64, "small": 8}, batch_size=4, steps=0, seed=1).epoch(0)
    small = np.concatenate(draws(plan, "small"))
    assert len(small) == 64  # the small task is not cut short: it appears in all 16 steps
    passes = small.reshape(8, 8)
    for rows in passes:
        assert sorted(rows.tolist()) == list(range(8))
    assert len({tuple(p) for p in passes.tolist()}) > 1  # reshuffled at each pass


def test_a_pass_never_repeats_a_row_when_the_size_is_not_a_multiple_of_the_batch():
    plan = RoundRobinSampler({"a": 7}, batch_size=3, steps=10, seed=0).epoch(0)
    batches = draws(plan, "a")
    assert all(len(b) == 3 for b in batches)
    for first, second in zip(batches[0::2], batches[1::2], strict=True):  # 2 full batches per pass of 7 rows
        assert len(set(first.tolist()) | set(second.tolist())) == 6


def test_same_seed_and_epoch_give_the_same_plan():
    sizes = {"a": 30, "b": 11}
    p = RoundRobinSampler(sizes, 4, 0, seed=5).epoch(2)
    q = RoundRobinSampler(sizes, 4, 0, seed=5).epoch(2)
    assert same_plan(p, q)
    sampler = RoundRobinSampler(sizes, 4, 0, seed=5)
    sampler.epoch(0)  # a plan is a pure function of (seed, epoch): nothing carries over between calls
    assert same_plan(sampler.epoch(2), p)


def test_another_epoch_or_seed_gives_another_plan():
    sizes = {"a": 30, "b": 11}
    base = RoundRobinSampler(sizes, 4, 0, seed=5).epoch(0)
    assert not same_plan(base, RoundRobinSampler(sizes, 4, 0, seed=5).epoch(1))
    assert not same_plan(base, RoundRobinSampler(sizes, 4, 0, seed=6).epoch(0))


def test_a_task_without_rows_is_an_error():
    with pytest.raises(ValueError, match="every task needs training rows"):
        RoundRobinSampler({"a": 10, "b": 0}, 4, 0, seed=0)
