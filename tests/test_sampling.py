"""Tests for mtbert.sampling: which task and which rows each training step uses."""

from __future__ import annotations

import numpy as np
import pytest

from mtbert.sampling import ONE_TASK_PER_STEP, SAMPLING_MODES, RoundRobinSampler, make_sampler

SIZES = {"a": 40, "b": 100, "c": 24}
BATCH = dict.fromkeys(SIZES, 4)
RECIPE = {"a": 3, "b": 1, "c": 4}  # the "3-1-4" dataset multipliers


def draws(plan, task: str) -> list[np.ndarray]:
    """The batches of ``task`` in step order."""
    out = []
    for step in plan:
        out += [rows for name, rows in step if name == task]
    return out


def tasks_of(plan) -> list[tuple[str, ...]]:
    """Which task(s) each step holds."""
    return [tuple(name for name, _ in step) for step in plan]


def frequencies(plan) -> dict[str, float]:
    names = [name for step in plan for name, _ in step]
    return {task: names.count(task) / len(names) for task in sorted(set(names))}


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


def test_round_robin_plans_are_those_of_the_code_before_sampling_modes():
    # Computed with the pre-refactor RoundRobinSampler: a resumed run must rebuild the very same plan.
    plan = RoundRobinSampler({"a": 10, "b": 7}, {"a": 4, "b": 3}, 5, seed=11).epoch(2)
    assert [[(t, r.tolist()) for t, r in step] for step in plan[:3]] == [
        [("a", [7, 8, 2, 3]), ("b", [1, 6, 3])],
        [("a", [0, 4, 1, 6]), ("b", [5, 2, 0])],
        [("a", [3, 0, 7, 6]), ("b", [1, 3, 4])],
    ]
    lengths = {"a": np.arange(10) % 4 * 3 + np.arange(10), "b": np.array([5, 1, 9, 2, 2, 8, 3])}
    plan = RoundRobinSampler({"a": 10, "b": 7}, {"a": 2, "b": 3}, 0, seed=4, lengths=lengths).epoch(1)
    assert [[(t, r.tolist()) for t, r in step] for step in plan] == [
        [("a", [7, 9]), ("b", [6, 4, 3])],
        [("a", [6, 3]), ("b", [2, 5, 0])],
        [("a", [1, 0]), ("b", [6, 3, 4])],
        [("a", [8, 4]), ("b", [2, 5, 0])],
        [("a", [5, 2]), ("b", [6, 4, 3])],
    ]


def test_oversample_is_the_round_robin_sampler():
    plan = make_sampler("oversample", SIZES, BATCH, 0, seed=2).epoch(3)
    assert same_plan(plan, RoundRobinSampler(SIZES, 4, 0, seed=2).epoch(3))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("oversample", [("a", "b", "c")] * 25),  # one pass over the largest set (100 / 4)
        ("undersample", [("a", "b", "c")] * 6),  # ends when the smallest set (24 / 4) is exhausted
        ("sequential", [("a",)] * 10 + [("b",)] * 25 + [("c",)] * 6),
    ],
)
def test_round_robin_and_sequential_steps_and_natural_epoch_length(mode, expected):
    sampler = make_sampler(mode, SIZES, BATCH, 0, seed=0)
    plan = sampler.epoch(0)
    assert sampler.steps == len(plan)
    assert tasks_of(plan) == expected


@pytest.mark.parametrize("mode", ["proportional", "annealed"])
def test_random_modes_hold_one_task_per_step_over_the_sum_of_the_passes(mode):
    sampler = make_sampler(mode, SIZES, BATCH, 0, seed=0, epochs=3)
    plan = sampler.epoch(1)
    assert sampler.steps == len(plan) == 10 + 25 + 6
    assert all(len(tasks) == 1 for tasks in tasks_of(plan))
    assert {tasks[0] for tasks in tasks_of(plan)} == set(SIZES)  # 41 draws: every task shows up
    assert tasks_of(plan) != tasks_of(sampler.epoch(2))  # the draws, not just the rows, change every epoch


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_one_task_per_step_lists_exactly_the_modes_whose_steps_hold_one_task(mode):
    plan = make_sampler(mode, SIZES, BATCH, 0, seed=0).epoch(0)
    assert (max(len(step) for step in plan) == 1) == (mode in ONE_TASK_PER_STEP)


@pytest.mark.parametrize(
    ("mode", "steps"), [("oversample", 30), ("undersample", 24), ("sequential", 79), ("proportional", 79)]
)
def test_multipliers_scale_the_natural_epoch_length(mode, steps):
    # effective sizes 120, 100, 96 rows -> 30, 25, 24 batches per multiplied pass
    assert len(make_sampler(mode, SIZES, BATCH, 0, seed=0, multipliers=RECIPE).epoch(0)) == steps


def test_sequential_gives_each_task_its_multiplied_pass():
    plan = make_sampler("sequential", SIZES, BATCH, 0, seed=0, multipliers=RECIPE).epoch(0)
    assert tasks_of(plan) == [("a",)] * 30 + [("b",)] * 25 + [("c",)] * 24


def test_undersample_ends_when_the_first_multiplied_set_is_exhausted():
    plan = make_sampler("undersample", SIZES, BATCH, 0, seed=0, multipliers=RECIPE).epoch(0)
    c_rows = np.concatenate(draws(plan, "c"))
    assert np.bincount(c_rows, minlength=24).tolist() == [4] * 24  # c (x4) is seen exactly four times over
    a_rows = np.concatenate(draws(plan, "a"))
    assert len(a_rows) == 96 < 120  # a's multiplied set (3 x 40 rows) is not finished


def test_missing_multipliers_count_as_one():
    with_ones = make_sampler("undersample", SIZES, BATCH, 0, seed=0, multipliers={"b": 1})
    assert with_ones.steps == make_sampler("undersample", SIZES, BATCH, 0, seed=0).steps == 6


@pytest.mark.parametrize("mode", SAMPLING_MODES)
@pytest.mark.parametrize("steps", [1, 7, 50])
def test_positive_steps_fix_the_epoch_length_in_every_mode(mode, steps):
    sampler = make_sampler(mode, SIZES, BATCH, steps, seed=0, multipliers=RECIPE, epochs=4)
    assert sampler.steps == steps
    assert all(len(sampler.epoch(e)) == steps for e in (0, 3))


def test_sequential_splits_fixed_steps_into_equal_shares_in_task_order():
    plan = make_sampler("sequential", SIZES, BATCH, 11, seed=0).epoch(0)
    assert tasks_of(plan) == [("a",)] * 4 + [("b",)] * 4 + [("c",)] * 3
    plan = make_sampler("sequential", SIZES, BATCH, 2, seed=0).epoch(0)
    assert tasks_of(plan) == [("a",), ("b",)]


def test_proportional_draws_tasks_in_proportion_to_their_effective_size():
    freq = frequencies(make_sampler("proportional", SIZES, BATCH, 8000, seed=0).epoch(0))
    for task, expected in {"a": 40 / 164, "b": 100 / 164, "c": 24 / 164}.items():
        assert freq[task] == pytest.approx(expected, abs=0.02)
    freq = frequencies(make_sampler("proportional", {"a": 10, "b": 10}, 2, 4000, seed=0, multipliers={"a": 3}).epoch(0))
    assert freq["a"] == pytest.approx(0.75, abs=0.03)


def test_annealed_starts_proportional_and_ends_uniform_with_anneal_to_zero():
    sampler = make_sampler("annealed", SIZES, BATCH, 8000, seed=0, epochs=5, anneal_to=0.0)
    assert sampler.alpha(0) == 1.0 and sampler.alpha(4) == 0.0
    first, last = frequencies(sampler.epoch(0)), frequencies(sampler.epoch(4))
    for task, expected in {"a": 40 / 164, "b": 100 / 164, "c": 24 / 164}.items():
        assert first[task] == pytest.approx(expected, abs=0.02)
        assert last[task] == pytest.approx(1 / 3, abs=0.02)


def test_annealed_alpha_goes_linearly_to_anneal_to():
    sampler = make_sampler("annealed", SIZES, BATCH, 0, seed=0, epochs=3)  # the paper's anneal_to = 0.2
    assert [sampler.alpha(e) for e in range(3)] == pytest.approx([1.0, 0.6, 0.2])
    weights = np.array([40, 100, 24]) ** 0.6
    assert list(sampler.probabilities(1).values()) == pytest.approx((weights / weights.sum()).tolist())


def test_annealed_with_one_epoch_is_proportional():
    sampler = make_sampler("annealed", SIZES, BATCH, 0, seed=3, epochs=1, anneal_to=0.0)
    assert sampler.alpha(0) == 1.0
    assert same_plan(sampler.epoch(0), make_sampler("proportional", SIZES, BATCH, 0, seed=3).epoch(0))


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_every_batch_is_full_in_range_and_no_row_repeats_within_a_pass(mode):
    sizes, batch_sizes = {"a": 10, "b": 7}, {"a": 3, "b": 2}
    plan = make_sampler(mode, sizes, batch_sizes, 60, seed=1, multipliers={"b": 2}, epochs=2).epoch(1)
    for task, size in sizes.items():
        batches = draws(plan, task)
        assert batches  # every mode visits every task in 60 steps
        assert all(len(rows) == batch_sizes[task] for rows in batches)
        assert all(0 <= r < size for rows in batches for r in rows.tolist())
        per_pass = size // batch_sizes[task]  # full batches in one pass over the real rows
        for start in range(0, len(batches), per_pass):
            seen = np.concatenate(batches[start : start + per_pass]).tolist()
            assert len(seen) == len(set(seen))


@pytest.mark.parametrize("mode", ["sequential", "proportional"])
def test_length_grouping_applies_to_one_task_modes(mode):
    lengths = {"a": np.random.default_rng(0).permutation(400)}
    spans = {}
    for grouped in (True, False):
        plan = make_sampler(mode, {"a": 400}, {"a": 4}, 0, seed=0, lengths=lengths if grouped else None).epoch(0)
        spans[grouped] = np.mean([np.ptp(lengths["a"][rows]) for rows in draws(plan, "a")])
    assert spans[True] < 20 < 100 < spans[False]


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_every_mode_is_a_pure_function_of_seed_and_epoch(mode):
    def plan(seed, epoch):
        return make_sampler(mode, SIZES, BATCH, 0, seed=seed, multipliers=RECIPE, epochs=3).epoch(epoch)

    sampler = make_sampler(mode, SIZES, BATCH, 0, seed=5, multipliers=RECIPE, epochs=3)
    sampler.epoch(0)  # nothing carries over between calls
    assert same_plan(sampler.epoch(2), plan(5, 2))
    assert not same_plan(plan(5, 2), plan(5, 1))
    assert not same_plan(plan(5, 2), plan(6, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "round_robin"}, "unknown sampling mode 'round_robin'; allowed: oversample, undersample, sequential"),
        ({"multipliers": {"a": 0}}, "multipliers must be integers >= 1"),
        ({"multipliers": {"zz": 2}}, r"multipliers name unknown tasks \['zz'\]"),
        ({"sizes": {"a": 10, "b": 0}}, "every task needs training rows"),
        ({"sizes": {}}, "at least one task"),
        ({"batch_sizes": {"a": 4}}, "every task needs a batch size"),
        ({"batch_sizes": {"a": 4, "b": 0}}, "every task needs a batch size"),
        ({"anneal_to": 1.5}, r"anneal_to must lie in \[0, 1\], got 1.5"),
        ({"anneal_to": -0.1, "mode": "annealed"}, "anneal_to must lie in"),
        ({"steps": -1}, "steps must be >= 0"),
        ({"epochs": 0, "mode": "annealed"}, "epochs must be >= 1"),
    ],
)
def test_bad_arguments_raise_an_error_naming_the_problem(kwargs, message):
    args = {"mode": "proportional", "sizes": {"a": 10, "b": 5}, "batch_sizes": {"a": 4, "b": 4}, "steps": 0}
    with pytest.raises(ValueError, match=message):
        make_sampler(**(args | kwargs), seed=0)


def test_round_robin_rejects_an_unknown_stop_rule():
    with pytest.raises(ValueError, match="stop must be 'longest' or 'shortest'"):
        RoundRobinSampler({"a": 10}, 4, 0, seed=0, stop="first")
