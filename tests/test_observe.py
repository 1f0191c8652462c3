"""Tests for mtbert.observe: task-gradient geometry statistics read from the aggregator's Gramian."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from mtbert.aggregators import AGGREGATOR_NAMES, Stat, make_aggregator
from mtbert.observe import GradientStats

TASKS = ["sst", "para", "sts"]
DECLARED = {
    "corrections": Stat("pair", "projections"),
    "weights": Stat("task", "weights"),
    "group_weights": Stat("group_task", "weights per group"),
    "scale": Stat("scalar", "one number"),
}


def aggregator(J: list[list[float]], **stats: torch.Tensor) -> SimpleNamespace:
    """A stand-in with what GradientStats reads: the Gramian J Jᵀ of the step, its diagnostics and their shapes."""
    J = torch.tensor(J, dtype=torch.float64)
    return SimpleNamespace(last_gramian=J @ J.T, last_stats=stats, stats=DECLARED)


# cos(sst, para) = 1/√2, cos(sst, sts) = -1, cos(para, sts) = -1/√2
STEP_1 = [[1.0, 0.0], [2.0, 2.0], [-3.0, 0.0]]
# cos(sst, para) = 0, cos(sst, sts) = 0.8, cos(para, sts) = 0.6
STEP_2 = [[0.0, 2.0], [1.0, 0.0], [3.0, 4.0]]


def test_one_step():
    stats = GradientStats(TASKS)
    stats.update(aggregator(STEP_1))
    summary = stats.summary()
    assert summary == pytest.approx(
        {
            "grad/cos_sst_para": 1 / math.sqrt(2),
            "grad/conflict_sst_para": 0.0,
            "grad/cos_sst_sts": -1.0,
            "grad/conflict_sst_sts": 1.0,
            "grad/cos_para_sts": -1 / math.sqrt(2),
            "grad/conflict_para_sts": 1.0,
        }
    )


def test_means_over_steps():
    stats = GradientStats(TASKS)
    stats.update(aggregator(STEP_1))
    stats.update(aggregator(STEP_2))
    summary = stats.summary()
    assert summary["grad/cos_sst_para"] == pytest.approx((1 / math.sqrt(2) + 0.0) / 2)
    assert summary["grad/cos_sst_sts"] == pytest.approx((-1.0 + 0.8) / 2)
    assert summary["grad/cos_para_sts"] == pytest.approx((-1 / math.sqrt(2) + 0.6) / 2)
    assert summary["grad/conflict_sst_para"] == 0.0  # cos = 0 is not a conflict
    assert summary["grad/conflict_sst_sts"] == 0.5
    assert summary["grad/conflict_para_sts"] == 0.5


def test_absent_task_is_skipped():
    stats = GradientStats(TASKS)
    stats.update(aggregator(STEP_1))
    stats.update(aggregator([[0.0, 2.0], [1.0, 0.0], [0.0, 0.0]]))  # sts absent: zero row, zero diagonal
    summary = stats.summary()
    assert summary["grad/cos_sst_sts"] == pytest.approx(-1.0)  # only the step where sts was present
    assert summary["grad/conflict_sst_sts"] == 1.0
    assert summary["grad/cos_sst_para"] == pytest.approx((1 / math.sqrt(2) + 0.0) / 2)  # both steps
    assert all(math.isfinite(v) for v in summary.values())


def test_a_task_never_present_has_no_pair_statistics():
    stats = GradientStats(TASKS)
    stats.update(aggregator([[1.0, 0.0], [0.0, 0.0], [-1.0, 1.0]]))
    assert set(stats.summary()) == {"grad/cos_sst_sts", "grad/conflict_sst_sts"}


def test_nothing_to_record_without_a_gramian_or_with_one_task():
    stats = GradientStats(TASKS)
    stats.update(SimpleNamespace(last_gramian=None, last_stats={}))
    assert stats.summary() == {}
    single = GradientStats(["sst"])
    single.update(aggregator([[1.0, 2.0]]))
    assert single.summary() == {}


def test_every_statistic_is_a_per_epoch_mean_of_its_declared_shape():
    stats = GradientStats(TASKS)
    stats.update(
        aggregator(
            STEP_1,
            corrections=torch.tensor([[0, 1, 0], [0, 0, 1], [1, 1, 0]]),
            weights=torch.tensor([1.0, 2.0, 3.0]),
            group_weights=torch.tensor([[1.0, 0.0, 2.0], [3.0, 2.0, 0.0]]),  # 2 groups: mean over them per task
            scale=torch.tensor(4.0),
        )
    )
    stats.update(
        aggregator(
            STEP_2,
            corrections=torch.tensor([[0, 0, 0], [0, 0, 1], [1, 0, 0]]),
            weights=torch.tensor([3.0, 2.0, 1.0]),
            group_weights=torch.tensor([[3.0, 0.0, 0.0], [1.0, 0.0, 0.0]]),
            scale=torch.tensor(0.0),
        )
    )
    summary = stats.summary()
    assert summary["grad/corrections_sst_para"] == 0.5  # sst corrected towards para in one of the two steps
    assert summary["grad/corrections_para_sts"] == 1.0
    assert summary["grad/corrections_para_sst"] == 0.0
    assert "grad/corrections_sst_sst" not in summary
    assert [summary[f"grad/weights_{t}"] for t in TASKS] == [2.0, 2.0, 2.0]
    # step 1: per-task group means (2, 1, 1); step 2: (2, 0, 0); over the epoch: (2, 0.5, 0.5)
    assert [summary[f"grad/group_weights_{t}"] for t in TASKS] == [2.0, 0.5, 0.5]
    assert summary["grad/scale"] == 2.0


def test_a_three_group_statistic_of_three_tasks_is_not_taken_for_a_pair_matrix():
    """[K, T] with K = T is what shape dispatch could not tell from [T, T]: the declaration decides."""
    stats = GradientStats(TASKS)
    stats.update(aggregator(STEP_1, group_weights=torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 6.0]])))
    assert [stats.summary()[f"grad/group_weights_{t}"] for t in TASKS] == [1.0, 1.0, 2.0]


def test_an_undeclared_statistic_is_refused():
    stats = GradientStats(TASKS)
    with pytest.raises(ValueError, match="'spread' but does not declare it"):
        stats.update(aggregator(STEP_1, spread=torch.ones(3)))


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_every_method_declares_what_it_reports(name: str):
    options = {"weights": [1.0, 2.0, 3.0]} if name == "weighted" else {}
    agg = make_aggregator(name, **options)
    J = torch.randn(3, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    agg(J, torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert set(agg.last_stats) <= set(agg.stats)
    for key, declared in agg.stats.items():
        assert declared.doc and declared.shape in ("task", "pair", "group_task", "scalar"), key
    stats = GradientStats(TASKS)
    stats.update(agg)
    assert all(math.isfinite(v) for v in stats.summary().values())


def test_reset_clears_everything():
    stats = GradientStats(TASKS)
    stats.update(aggregator(STEP_1, corrections=torch.ones(3, 3)))
    stats.reset()
    assert stats.summary() == {}


def test_state_dict_round_trip(tmp_path):
    stats = GradientStats(TASKS)
    stats.update(aggregator(STEP_1, corrections=torch.eye(3)))
    torch.save(stats.state_dict(), tmp_path / "stats.pt")
    resumed = GradientStats(TASKS)
    resumed.load_state_dict(torch.load(tmp_path / "stats.pt", weights_only=True))
    assert resumed.summary() == stats.summary()
    for s in (stats, resumed):
        s.update(aggregator(STEP_2, corrections=torch.eye(3)))
    assert resumed.summary() == pytest.approx(stats.summary())
    assert resumed.summary()["grad/cos_sst_sts"] == pytest.approx(-0.1)  # both steps counted after resuming
