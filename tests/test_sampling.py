"""Tests for mtbert.sampling: which task and which rows each training step uses."""

from __future__ import annotations

import numpy as np
import pytest
from _plan_asserts import assert_valid_plan

from mtbert.sampling import (
    ONE_TASK_PER_STEP,
    SAMPLING_MODES,
    MultiTaskSampler,
    Proportional,
    RoundRobin,
    RowStream,
    Sequential,
    make_sampler,
    schedules,
)

SIZES = {"a": 40, "b": 100, "c": 24}
BATCH = dict.fromkeys(SIZES, 4)
RECIPE = {"a": 3, "b": 1, "c": 4}  # the "3-1-4" dataset multipliers


def oversample(sizes: dict[str, int], batch_size: int | dict[str, int], steps: int, seed: int, **kwargs):
    batch_sizes = batch_size if isinstance(batch_size, dict) else dict.fromkeys(sizes, batch_size)
    return make_sampler("oversample", sizes, batch_sizes, steps, seed, **kwargs)


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


# --- every mode: valid plans, composed from streams and a schedule --------------------------------------------------


@pytest.mark.parametrize("mode", SAMPLING_MODES)
@pytest.mark.parametrize("steps", [0, 7, 60])
@pytest.mark.parametrize("grouped", [False, True])
def test_every_mode_makes_valid_plans(mode, steps, grouped):
    sizes, batch_sizes = {"a": 10, "b": 7, "c": 3}, {"a": 3, "b": 2, "c": 4}  # c: fewer rows than its batch
    lengths = {t: np.random.default_rng(n).integers(1, 50, n) for t, n in sizes.items()} if grouped else None
    sampler = make_sampler(mode, sizes, batch_sizes, steps, seed=1, lengths=lengths, multipliers={"b": 2}, epochs=2)
    assert sampler.batch_sizes == batch_sizes
    for epoch in (0, 1):
        assert_valid_plan(sampler.epoch(epoch), sizes, batch_sizes, steps=sampler.steps)
    if steps == 60:
        assert all(draws(sampler.epoch(1), task) for task in sizes)  # every mode visits every task in 60 steps


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_make_sampler_composes_one_stream_per_task_with_the_mode_s_schedule(mode):
    sampler = make_sampler(mode, SIZES, BATCH, 0, seed=2, multipliers=RECIPE, epochs=3, anneal_to=0.5)
    streams = [RowStream(task, n, BATCH[task], RECIPE[task]) for task, n in SIZES.items()]
    composed = MultiTaskSampler(streams, schedules(epochs=3, anneal_to=0.5)[mode], 0, seed=2)
    assert sampler.steps == composed.steps
    assert all(same_plan(sampler.epoch(e), composed.epoch(e)) for e in (0, 2))


def test_the_registry_names_every_mode_and_its_schedule():
    assert SAMPLING_MODES == ("oversample", "undersample", "sequential", "proportional", "annealed")
    kinds = {mode: (type(s).__name__, getattr(s, "stop", None)) for mode, s in schedules().items()}
    assert kinds == {
        "oversample": ("RoundRobin", "longest"),
        "undersample": ("RoundRobin", "shortest"),
        "sequential": ("Sequential", None),
        "proportional": ("Proportional", None),
        "annealed": ("Proportional", None),
    }


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_one_task_per_step_lists_exactly_the_modes_whose_steps_hold_one_task(mode):
    plan = make_sampler(mode, SIZES, BATCH, 0, seed=0).epoch(0)
    assert_valid_plan(plan, SIZES, BATCH)
    assert (max(len(step) for step in plan) == 1) == (mode in ONE_TASK_PER_STEP)


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_every_mode_is_a_pure_function_of_seed_and_epoch(mode):
    def plan(seed, epoch):
        return make_sampler(mode, SIZES, BATCH, 0, seed=seed, multipliers=RECIPE, epochs=3).epoch(epoch)

    sampler = make_sampler(mode, SIZES, BATCH, 0, seed=5, multipliers=RECIPE, epochs=3)
    sampler.epoch(0)  # nothing carries over between calls
    assert same_plan(sampler.epoch(2), plan(5, 2))
    assert not same_plan(plan(5, 2), plan(5, 1))
    assert not same_plan(plan(5, 2), plan(6, 2))


@pytest.mark.parametrize("mode", SAMPLING_MODES)
@pytest.mark.parametrize("steps", [1, 7, 50])
def test_positive_steps_fix_the_epoch_length_in_every_mode(mode, steps):
    sampler = make_sampler(mode, SIZES, BATCH, steps, seed=0, multipliers=RECIPE, epochs=4)
    assert sampler.steps == steps
    for e in (0, 3):
        assert_valid_plan(sampler.epoch(e), SIZES, BATCH, steps=steps)


# --- row streams (seen through round-robin plans) -------------------------------------------------------------------


def test_each_step_draws_one_full_batch_from_every_task_in_order():
    sizes = {"sst": 20, "para": 7, "sts": 12}
    plan = oversample(sizes, 4, steps=6, seed=0).epoch(0)
    assert_valid_plan(plan, sizes, dict.fromkeys(sizes, 4), steps=6)
    assert tasks_of(plan) == [("sst", "para", "sts")] * 6


def test_steps_sets_the_epoch_length():
    for steps in (1, 3, 17):
        assert len(oversample({"a": 8, "b": 100}, 4, steps, seed=0).epoch(0)) == steps


def test_steps_zero_is_one_pass_over_the_largest_task():
    sizes = {"small": 6, "large": 40, "mid": 13}
    sampler = oversample(sizes, 4, steps=0, seed=3)
    plan = sampler.epoch(0)
    assert sampler.steps == len(plan) == 10
    assert_valid_plan(plan, sizes, dict.fromkeys(sizes, 4))
    large = np.concatenate(draws(plan, "large"))
    assert sorted(large.tolist()) == list(range(40))  # every row exactly once


def test_steps_zero_never_repeats_a_row_of_the_largest_task_when_size_is_not_a_multiple_of_the_batch():
    plan = oversample({"large": 10, "small": 3}, 4, steps=0, seed=0).epoch(0)
    assert_valid_plan(plan, {"large": 10, "small": 3}, {"large": 4, "small": 4})
    large = draws(plan, "large")
    assert all(len(rows) == 4 for rows in large)
    seen = np.concatenate(large).tolist()
    assert len(seen) == len(set(seen))  # one pass: no row twice
    assert len(seen) > 10 - 4  # and no more than a short batch's worth left out


def test_smaller_tasks_cycle_through_every_row_before_any_repeat():
    plan = oversample({"large": 64, "small": 8}, 4, steps=0, seed=1).epoch(0)
    small = np.concatenate(draws(plan, "small"))
    assert len(small) == 64  # the small task is not cut short: it appears in all 16 steps
    passes = small.reshape(8, 8)
    for rows in passes:
        assert sorted(rows.tolist()) == list(range(8))
    assert len({tuple(p) for p in passes.tolist()}) > 1  # reshuffled at each pass


def test_a_pass_never_repeats_a_row_when_the_size_is_not_a_multiple_of_the_batch():
    plan = oversample({"a": 7}, 3, steps=10, seed=0).epoch(0)
    batches = draws(plan, "a")
    assert all(len(b) == 3 for b in batches)
    for first, second in zip(batches[0::2], batches[1::2], strict=True):  # 2 full batches per pass of 7 rows
        assert len(set(first.tolist()) | set(second.tolist())) == 6


def test_same_seed_and_epoch_give_the_same_plan():
    sizes = {"a": 30, "b": 11}
    p = oversample(sizes, 4, 0, seed=5).epoch(2)
    assert same_plan(p, oversample(sizes, 4, 0, seed=5).epoch(2))
    sampler = oversample(sizes, 4, 0, seed=5)
    sampler.epoch(0)  # a plan is a pure function of (seed, epoch): nothing carries over between calls
    assert same_plan(sampler.epoch(2), p)


def test_another_epoch_or_seed_gives_another_plan():
    sizes = {"a": 30, "b": 11}
    base = oversample(sizes, 4, 0, seed=5).epoch(0)
    assert not same_plan(base, oversample(sizes, 4, 0, seed=5).epoch(1))
    assert not same_plan(base, oversample(sizes, 4, 0, seed=6).epoch(0))


def test_round_robin_plans_are_those_of_the_code_before_sampling_modes():
    # Computed with the pre-refactor RoundRobinSampler: a resumed run must rebuild the very same plan.
    plan = oversample({"a": 10, "b": 7}, {"a": 4, "b": 3}, 5, seed=11).epoch(2)
    assert [[(t, r.tolist()) for t, r in step] for step in plan[:3]] == [
        [("a", [7, 8, 2, 3]), ("b", [1, 6, 3])],
        [("a", [0, 4, 1, 6]), ("b", [5, 2, 0])],
        [("a", [3, 0, 7, 6]), ("b", [1, 3, 4])],
    ]
    lengths = {"a": np.arange(10) % 4 * 3 + np.arange(10), "b": np.array([5, 1, 9, 2, 2, 8, 3])}
    plan = oversample({"a": 10, "b": 7}, {"a": 2, "b": 3}, 0, seed=4, lengths=lengths).epoch(1)
    assert [[(t, r.tolist()) for t, r in step] for step in plan] == [
        [("a", [7, 9]), ("b", [6, 4, 3])],
        [("a", [6, 3]), ("b", [2, 5, 0])],
        [("a", [1, 0]), ("b", [6, 3, 4])],
        [("a", [8, 4]), ("b", [2, 5, 0])],
        [("a", [5, 2]), ("b", [6, 4, 3])],
    ]


def test_a_stream_counts_its_multiplied_passes():
    stream = RowStream("a", 10, 4, multiplier=3)
    assert (stream.effective_size, stream.batches_per_pass) == (30, 7)
    assert RowStream("tiny", 3, 4).batches_per_pass == 1  # never 0 batches, even with fewer rows than a batch
    plain = RowStream("a", 10, 4)  # no multiplier: one pass over the real rows
    assert (plain.multiplier, plain.effective_size, plain.batches_per_pass) == (1, 10, 2)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_a_task_of_one_row_gives_that_row_in_every_batch(batch_size):
    """One row is a valid task (size >= 1), and 1 a valid batch size: every batch is row 0, never an empty one."""
    stream = RowStream("one", 1, batch_size)
    assert stream.batches_per_pass == 1
    batches = stream.batches(np.random.default_rng(0))
    assert [next(batches).tolist() for _ in range(5)] == [[0]] * 5


def test_batch_size_one_visits_every_row_once_per_pass():
    batches = RowStream("a", 5, 1).batches(np.random.default_rng(3))
    passes = [[next(batches).item() for _ in range(5)] for _ in range(3)]
    assert all(sorted(p) == list(range(5)) for p in passes)
    assert len({tuple(p) for p in passes}) > 1  # reshuffled at each pass


def test_a_task_smaller_than_its_batch_draws_one_permutation_per_batch():
    """Each batch of a task with fewer rows than a batch is a whole pass: the k-th batch is the k-th permutation of
    the rows drawn from the generator (the first at the first ``next()``), no draw wasted."""
    batches = RowStream("tiny", 3, 4).batches(np.random.default_rng(7))
    reference = np.random.default_rng(7)
    for _ in range(4):
        assert next(batches).tolist() == reference.permutation(3).tolist()


@pytest.mark.parametrize("mode", ["sequential", "proportional"])
def test_length_grouping_applies_to_one_task_modes(mode):
    lengths = {"a": np.random.default_rng(0).permutation(400)}
    spans = {}
    for grouped in (True, False):
        plan = make_sampler(mode, {"a": 400}, {"a": 4}, 0, seed=0, lengths=lengths if grouped else None).epoch(0)
        assert_valid_plan(plan, {"a": 400}, {"a": 4})
        spans[grouped] = np.mean([np.ptp(lengths["a"][rows]) for rows in draws(plan, "a")])
    assert spans[True] < 20 < 100 < spans[False]


# --- schedules: which task(s) each step holds, natural epoch lengths -----------------------------------------------


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


@pytest.mark.parametrize(
    ("mode", "steps"), [("oversample", 30), ("undersample", 24), ("sequential", 79), ("proportional", 79)]
)
def test_multipliers_scale_the_natural_epoch_length(mode, steps):
    # effective sizes 120, 100, 96 rows -> 30, 25, 24 batches per multiplied pass
    plan = make_sampler(mode, SIZES, BATCH, 0, seed=0, multipliers=RECIPE).epoch(0)
    assert_valid_plan(plan, SIZES, BATCH, steps=steps)


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


def test_sequential_splits_fixed_steps_into_equal_shares_in_task_order():
    plan = make_sampler("sequential", SIZES, BATCH, 11, seed=0).epoch(0)
    assert tasks_of(plan) == [("a",)] * 4 + [("b",)] * 4 + [("c",)] * 3
    plan = make_sampler("sequential", SIZES, BATCH, 2, seed=0).epoch(0)
    assert tasks_of(plan) == [("a",), ("b",)]
    # a fixed length equal to the natural one still splits equally (10 + 25 + 6 = 41 steps)
    assert tasks_of(make_sampler("sequential", SIZES, BATCH, 41, seed=0).epoch(0))[:14] == [("a",)] * 14


def test_proportional_draws_tasks_in_proportion_to_their_effective_size():
    freq = frequencies(make_sampler("proportional", SIZES, BATCH, 8000, seed=0).epoch(0))
    for task, expected in {"a": 40 / 164, "b": 100 / 164, "c": 24 / 164}.items():
        assert freq[task] == pytest.approx(expected, abs=0.02)
    sampler = make_sampler("proportional", {"a": 10, "b": 10}, {"a": 2, "b": 2}, 4000, seed=0, multipliers={"a": 3})
    assert sampler.schedule.probabilities(sampler.streams, 0) == pytest.approx({"a": 0.75, "b": 0.25})
    assert frequencies(sampler.epoch(0))["a"] == pytest.approx(0.75, abs=0.03)


def test_annealed_starts_proportional_and_ends_uniform_with_anneal_to_zero():
    sampler = make_sampler("annealed", SIZES, BATCH, 8000, seed=0, epochs=5, anneal_to=0.0)
    assert sampler.schedule.alpha(0) == 1.0 and sampler.schedule.alpha(4) == 0.0
    first, last = frequencies(sampler.epoch(0)), frequencies(sampler.epoch(4))
    for task, expected in {"a": 40 / 164, "b": 100 / 164, "c": 24 / 164}.items():
        assert first[task] == pytest.approx(expected, abs=0.02)
        assert last[task] == pytest.approx(1 / 3, abs=0.02)


def test_annealed_alpha_goes_linearly_to_anneal_to():
    sampler = make_sampler("annealed", SIZES, BATCH, 0, seed=0, epochs=3)  # the paper's anneal_to = 0.2
    assert [sampler.schedule.alpha(e) for e in range(4)] == pytest.approx([1.0, 0.6, 0.2, 0.2])  # then stays
    weights = np.array([40, 100, 24]) ** 0.6
    assert list(sampler.schedule.probabilities(sampler.streams, 1).values()) == pytest.approx(
        (weights / weights.sum()).tolist()
    )


def test_annealed_with_one_epoch_is_proportional():
    sampler = make_sampler("annealed", SIZES, BATCH, 0, seed=3, epochs=1, anneal_to=0.0)
    assert sampler.schedule.alpha(0) == 1.0
    assert same_plan(sampler.epoch(0), make_sampler("proportional", SIZES, BATCH, 0, seed=3).epoch(0))


def test_annealed_defaults_to_one_epoch_so_it_stays_proportional():
    """Without ``epochs`` (one epoch, the default of make_sampler and schedules) α stays 1 in every epoch."""
    sampler = make_sampler("annealed", SIZES, BATCH, 0, seed=3, anneal_to=0.0)
    assert [sampler.schedule.alpha(e) for e in range(3)] == [1.0] * 3
    assert same_plan(sampler.epoch(1), make_sampler("proportional", SIZES, BATCH, 0, seed=3).epoch(1))
    annealed = schedules(anneal_to=0.0)["annealed"]
    assert [annealed.alpha(e) for e in range(3)] == [1.0] * 3


# --- bad arguments: each rule lives in one constructor, which names the argument ------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "round_robin"}, "unknown sampling mode 'round_robin'; allowed: oversample, undersample, sequential"),
        ({"multipliers": {"a": 0}}, "multiplier must be an integer >= 1, got 0 for task 'a'"),
        ({"multipliers": {"zz": 2}}, r"multipliers name unknown tasks \['zz'\]"),
        ({"sizes": {"a": 10, "b": 0}}, r"size must be >= 1 \(every task needs training rows\), got 0 for task 'b'"),
        ({"sizes": {}}, "streams must hold at least one task"),
        ({"batch_sizes": {"a": 4}}, r"batch_sizes must give every task a batch size, missing \['b'\]"),
        ({"batch_sizes": {"a": 4, "b": 0}}, "batch_size must be >= 1, got 0 for task 'b'"),
        ({"lengths": {"a": np.ones(10), "b": np.ones(4)}}, r"lengths must give one length per row \(5\), got 4"),
        ({"anneal_to": 1.5}, r"anneal_to must lie in \[0, 1\], got 1.5"),  # checked in every mode: params set it
        ({"anneal_to": -0.1, "mode": "annealed"}, "anneal_to must lie in"),
        ({"steps": -1}, "steps must be >= 0"),
        ({"epochs": 0, "mode": "annealed"}, "epochs must be >= 1"),
    ],
)
def test_bad_arguments_raise_an_error_naming_the_problem(kwargs, message):
    args = {"mode": "proportional", "sizes": {"a": 10, "b": 5}, "batch_sizes": {"a": 4, "b": 4}, "steps": 0}
    with pytest.raises(ValueError, match=message):
        make_sampler(**(args | kwargs), seed=0)


def one_stream(**kwargs) -> RowStream:
    return RowStream(**({"task": "a", "size": 10, "batch_size": 4} | kwargs))


@pytest.mark.parametrize(
    ("build", "factory_kwargs", "argument"),
    [
        (
            lambda: Proportional(epochs=3, anneal_to=1.5),
            {"mode": "annealed", "epochs": 3, "anneal_to": 1.5},
            "anneal_to",
        ),
        (lambda: Proportional(epochs=0), {"mode": "annealed", "epochs": 0}, "epochs"),
        (lambda: MultiTaskSampler([one_stream()], Sequential(), -2, seed=0), {"steps": -2}, "steps"),
        (lambda: one_stream(multiplier=0), {"multipliers": {"a": 0}}, "multiplier"),
        (lambda: one_stream(size=0), {"sizes": {"a": 0}}, "size"),
        (lambda: one_stream(batch_size=0), {"batch_sizes": {"a": 0}}, "batch_size"),
        (lambda: MultiTaskSampler([], RoundRobin(), 0, seed=0), {"sizes": {}}, "streams"),
    ],
)
def test_each_rule_lives_in_one_constructor_that_make_sampler_reaches(build, factory_kwargs, argument):
    with pytest.raises(ValueError) as direct:
        build()
    args = {"mode": "sequential", "sizes": {"a": 10}, "batch_sizes": {"a": 4}, "steps": 0, "seed": 0}
    with pytest.raises(ValueError) as through_factory:
        make_sampler(**(args | factory_kwargs))
    assert str(direct.value).startswith(f"{argument} ")  # the config loader maps the argument to its params key
    assert str(through_factory.value) == str(direct.value)


def test_round_robin_rejects_an_unknown_stop_rule():
    with pytest.raises(ValueError, match="stop must be 'longest' or 'shortest', got 'first'"):
        RoundRobin("first")


def test_a_sampler_rejects_two_streams_of_one_task():
    with pytest.raises(ValueError, match=r"streams must be of distinct tasks, got \['a', 'a'\]"):
        MultiTaskSampler([one_stream(), one_stream()], RoundRobin(), 0, seed=0)


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_anneal_to_and_epochs_are_checked_in_every_mode(mode):
    with pytest.raises(ValueError, match="anneal_to must lie in"):
        make_sampler(mode, SIZES, BATCH, 0, seed=0, anneal_to=1.5)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        make_sampler(mode, SIZES, BATCH, 0, seed=0, epochs=0)
