"""Tests for mtbert.training_state: the run's state, its checkpoint and the per-step curves, without training.

The training loop's own tests (tests/test_training.py) check the same parts through tiny training runs; these check
each rule by hand, in milliseconds, so that a mutant of it costs milliseconds too (docs/testing.md)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from mtbert.checkpoint import Checkpointer
from mtbert.training_state import Curves, TrainState, load_checkpoint, replay, save_checkpoint

CPU = torch.device("cpu")


@dataclass
class FakeGroup:
    """Process ``rank`` of ``world`` without communication: ``from_main`` hands over what rank 0 would, and
    ``gather`` returns every process's value as ``others`` says (this process's own at its rank)."""

    rank: int = 0
    world: int = 1
    from_rank0: object = None
    others: tuple = ()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def from_main(self, value):
        return value if self.main else self.from_rank0

    def gather(self, value):
        out = list(self.others) or [None] * self.world
        out[self.rank] = value
        return out


class Part:
    """A stateful part that records the order in which it was restored."""

    def __init__(self, name: str, value: float, order: list[str]) -> None:
        self.name, self.value, self.order = name, value, order

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state_dict: dict) -> None:
        self.value = state_dict["value"]
        self.order.append(self.name)


class FakeStats:
    def __init__(self, summary: dict[str, float]) -> None:
        self.values, self.resets = summary, 0

    def summary(self) -> dict[str, float]:
        return dict(self.values)

    def reset(self) -> None:
        self.resets += 1


def test_losses_add_into_the_epochs_and_the_windows_sums():
    state = TrainState()
    state.add_losses({"loss_a": 1.0, "loss_b": 4.0})
    state.add_losses({"loss_a": 3.0})
    assert state.running == state.window == {"loss_a": [4.0, 2], "loss_b": [4.0, 1]}
    assert state.mean_losses() == {"loss_a": 2.0, "loss_b": 4.0}
    state.window = {"loss_a": [9.0, 3]}
    assert state.mean_losses(state.window) == {"loss_a": 3.0}
    assert state.mean_losses({}) == {}  # an empty window is a window, not "the epoch's"


def test_losses_on_the_device_stay_tensors_until_read():
    state = TrainState()
    state.add_losses({"loss_a": torch.tensor(1.5, dtype=torch.float64)})
    state.add_losses({"loss_a": torch.tensor(2.5, dtype=torch.float64)})
    total, n = state.running["loss_a"]
    assert isinstance(total, torch.Tensor) and n == 2
    assert state.mean_losses() == {"loss_a": 2.0}
    assert state.saved()["running"] == {"loss_a": [4.0, 2]}
    assert type(state.saved()["running"]["loss_a"][0]) is float  # plain numbers: weights_only loads them


def test_the_first_epoch_is_best_then_only_a_strictly_higher_overall():
    state = TrainState()
    assert state.end_epoch(0, {"overall": 0.5}) is True and state.best_epoch == 0
    assert state.end_epoch(1, {"overall": 0.5}) is False and state.best_epoch == 0  # a tie keeps the earlier
    assert state.end_epoch(2, {"overall": 0.7}) is True and state.best_epoch == 2
    assert state.end_epoch(3, {"overall": 0.6}) is False and state.best_epoch == 2
    assert [m["overall"] for m in state.history] == [0.5, 0.5, 0.7, 0.6]


def test_the_first_epoch_is_best_whatever_its_score():
    state = TrainState()
    assert state.end_epoch(0, {"overall": -1.0}) is True and state.best_epoch == 0


def test_ending_an_epoch_moves_to_the_next_and_clears_its_sums_but_not_the_window():
    state = TrainState(epoch=2, step=7, running={"loss_a": [1.0, 1]}, window={"loss_a": [1.0, 1]})
    state.end_epoch(2, {"overall": 0.1})
    assert (state.epoch, state.step, state.running) == (3, 0, {})
    assert state.window == {"loss_a": [1.0, 1]}  # a curve window may span an epoch's end


def test_a_checkpoint_round_trip_restores_every_part_in_order_and_the_random_state():
    order: list[str] = []
    parts = {"model": Part("model", 1.0, order), "optimizer": Part("optimizer", 2.0, order)}
    state = TrainState(epoch=1, step=3, history=[{"overall": 0.4}], best_epoch=0, curves=[(2, {"lr": 0.5})])
    state.add_losses({"loss_a": torch.tensor(2.0)})
    checkpoints = Checkpointer(None, "run")
    torch.manual_seed(0)
    save_checkpoint(checkpoints, state, parts, FakeGroup(), CPU)
    expected = torch.rand(3)  # what the run would have drawn next
    parts["model"].value = parts["optimizer"].value = -1.0
    torch.manual_seed(123)
    restored = load_checkpoint(
        checkpoints, {"optimizer": parts["optimizer"], "model": parts["model"]}, FakeGroup(), CPU
    )
    assert restored is not None
    assert order == ["optimizer", "model"]  # in the order the caller lists them
    assert (parts["model"].value, parts["optimizer"].value) == (1.0, 2.0)
    assert torch.equal(torch.rand(3), expected)
    assert (restored.epoch, restored.step, restored.best_epoch) == (1, 3, 0)
    assert restored.history == [{"overall": 0.4}] and restored.running == {"loss_a": [2.0, 1]}
    assert restored.curves == [(2, {"lr": 0.5})] and isinstance(restored.curves[0], tuple)


def test_a_checkpoint_through_a_file_gives_tuples_back_as_an_uninterrupted_run_has_them(tmp_path):
    state = TrainState(curves=[(1, {"lr": 0.1}), (2, {"lr": 0.2})])
    save_checkpoint(Checkpointer(tmp_path, "run"), state, {}, FakeGroup(), CPU)
    restored = load_checkpoint(Checkpointer(tmp_path, "run"), {}, FakeGroup(), CPU)
    assert restored is not None and restored.curves == [(1, {"lr": 0.1}), (2, {"lr": 0.2})]
    assert all(type(point) is tuple for point in restored.curves)  # torch.load gives lists back


def test_nothing_to_load_restores_nothing():
    order: list[str] = []
    part = Part("model", 5.0, order)
    assert load_checkpoint(Checkpointer(None, "run"), {"model": part}, FakeGroup(), CPU) is None
    assert order == [] and part.value == 5.0


def test_only_rank_0_writes_but_every_process_hands_its_random_state_over():
    checkpoints = Checkpointer(None, "run")
    save_checkpoint(checkpoints, TrainState(), {}, FakeGroup(rank=1, world=2, others=("r0", None)), CPU)
    assert checkpoints.load() is None
    save_checkpoint(checkpoints, TrainState(), {}, FakeGroup(rank=0, world=2, others=(None, "r1")), CPU)
    rng = checkpoints.load()["rng"]
    assert rng[1] == "r1" and torch.equal(rng[0]["cpu"], torch.get_rng_state())


def test_each_process_restores_its_own_random_state_and_a_new_one_rank_0s():
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append({"cpu": torch.get_rng_state(), "cuda": None})
    checkpoints = Checkpointer(None, "run")
    checkpoints.save({"state": TrainState().saved(), "rng": states})
    for rank, seed in ((0, 1), (1, 2), (2, 1)):  # rank 2: a third process the writing run did not have
        torch.manual_seed(seed)
        expected = torch.rand(2)
        torch.manual_seed(99)
        group = FakeGroup(rank=rank, world=3, from_rank0=checkpoints.load())
        assert load_checkpoint(checkpoints, {}, group, CPU) is not None
        assert torch.equal(torch.rand(2), expected), rank


def test_replay_calls_each_hook_for_what_was_done_in_order():
    state = TrainState(history=[{"overall": 0.1}, {"overall": 0.2}], curves=[(1, {"lr": 1.0}), (2, {"lr": 0.5})])
    epochs, points = [], []
    replay(state, lambda e, m: epochs.append((e, m)), lambda s, v: points.append((s, v)))
    assert epochs == [(0, {"overall": 0.1}), (1, {"overall": 0.2})]
    assert points == [(1, {"lr": 1.0}), (2, {"lr": 0.5})]
    replay(state, None, lambda s, v: points.append((s, v)))  # either hook may be missing
    replay(state, lambda e, m: epochs.append((e, m)), None)
    assert len(points) == 4 and len(epochs) == 4


def curves(log_every: int, eval_every: int, epoch_steps: int = 4) -> Curves:
    made = Curves(["a"], log_every, eval_every, epoch_steps)
    made.stats = FakeStats({"grad/cos": 0.25})
    return made


def test_a_curve_point_every_log_every_steps_holds_the_windows_means_and_starts_a_new_window():
    made, state = curves(log_every=2, eval_every=0), TrainState()
    state.add_losses({"loss_a": 1.0})
    assert made.point(state, 1, 0.1, lambda: pytest.fail("evaluated")) == {}
    state.add_losses({"loss_a": 3.0})
    point = made.point(state, 2, 0.1, lambda: pytest.fail("evaluated"))
    assert point == {"loss_a": 2.0, "lr": 0.1, "grad/cos": 0.25}
    assert state.window == {} and made.stats.resets == 1
    assert state.running == {"loss_a": [4.0, 2]}  # the epoch's sums go on
    assert state.curves == [(2, point)]


def test_dev_points_every_eval_every_steps_but_at_an_epochs_end():
    made, state = curves(log_every=0, eval_every=2, epoch_steps=4), TrainState()
    calls = []

    def evaluate():
        calls.append(1)
        return {"overall": 0.5}

    assert made.point(state, 2, 0.1, evaluate) == {"dev/overall": 0.5}
    assert made.point(state, 3, 0.1, evaluate) == {}
    assert made.point(state, 4, 0.1, evaluate) == {}  # the epoch's end evaluates anyway
    assert made.point(state, 6, 0.1, evaluate) == {"dev/overall": 0.5}
    assert len(calls) == 2 and [s for s, _ in state.curves] == [2, 6]
    assert made.stats.resets == 0  # no loss point: the window goes on


def test_a_point_with_both_holds_the_losses_and_the_dev_metrics():
    made, state = curves(log_every=1, eval_every=1, epoch_steps=4), TrainState()
    state.add_losses({"loss_a": 2.0})
    assert made.point(state, 1, 0.3, lambda: {"overall": 0.5}) == {
        "loss_a": 2.0,
        "lr": 0.3,
        "grad/cos": 0.25,
        "dev/overall": 0.5,
    }
