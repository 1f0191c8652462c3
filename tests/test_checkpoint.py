"""Tests for mtbert.checkpoint: resumable checkpoints keyed by the run that wrote them."""

from __future__ import annotations

import pickle

import pytest
import torch

from mtbert.checkpoint import Checkpointer


def payload(step: int) -> dict:
    return {
        "progress": {"epoch": 1, "step": step, "history": [{"overall": 0.5}]},
        "model": {"w": torch.arange(6.0).reshape(2, 3) * step},
        "rng": torch.get_rng_state(),
    }


def test_nothing_to_resume_from_an_empty_folder(tmp_path):
    assert Checkpointer(tmp_path / "ckpt", "run-a").load() is None


def test_save_then_load_round_trip(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", "run-a")
    ckpt.save(payload(3))
    loaded = Checkpointer(tmp_path / "ckpt", "run-a").load()  # a new process resuming
    assert loaded is not None
    assert loaded["progress"] == payload(3)["progress"]
    assert torch.equal(loaded["model"]["w"], payload(3)["model"]["w"])
    assert torch.equal(loaded["rng"], payload(3)["rng"])
    assert loaded["run_key"] == "run-a"


def test_a_later_save_replaces_the_earlier_one_atomically(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", "run-a")
    ckpt.save(payload(3))
    ckpt.save(payload(5))
    assert ckpt.load()["progress"]["step"] == 5
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["state.pt"]  # no temporary file left behind


def test_a_checkpoint_of_another_run_is_ignored(tmp_path):
    Checkpointer(tmp_path / "ckpt", "run-a").save(payload(3))
    assert Checkpointer(tmp_path / "ckpt", "run-b").load() is None
    assert Checkpointer(tmp_path / "ckpt", "run-a").load() is not None


def test_clear_removes_the_checkpoint(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", "run-a")
    ckpt.save(payload(3))
    ckpt.clear()
    assert not (tmp_path / "ckpt").exists()
    assert ckpt.load() is None
    ckpt.clear()  # clearing twice is fine


def test_best_weights_are_a_copy_kept_beside_the_checkpoint(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", "run-a")
    weights = {"w": torch.ones(3)}
    ckpt.save_best(weights)
    weights["w"].add_(1.0)  # training goes on: the saved best weights must not follow
    assert torch.equal(Checkpointer(tmp_path / "ckpt", "run-a").load_best()["w"], torch.ones(3))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["best.pt"]
    with pytest.raises(FileNotFoundError):
        Checkpointer(tmp_path / "ckpt", "run-b").load_best()  # another run's best weights are not ours


def test_in_memory_checkpoints_write_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = Checkpointer(None, "run-a")
    assert ckpt.load() is None
    ckpt.save(payload(2))
    ckpt.save_best({"w": torch.zeros(2)})
    assert ckpt.load()["progress"]["step"] == 2 and torch.equal(ckpt.load_best()["w"], torch.zeros(2))
    assert list(tmp_path.iterdir()) == []
    ckpt.clear()
    assert ckpt.load() is None


class _Code:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_a_checkpoint_holding_pickled_code_is_refused(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", "run-a")
    ckpt.folder.mkdir()
    torch.save({"run_key": "run-a", "x": _Code()}, ckpt.path)
    with pytest.raises(pickle.UnpicklingError):
        ckpt.load()
