"""Tests for mtbert.checkpoint: resumable checkpoints keyed by the run that wrote them."""

from __future__ import annotations

import pickle

import pytest
import torch

from mtbert.checkpoint import Checkpointer


def payload(step: int) -> dict:
    return {
        "progress": {"epoch": 1, "step": step, "history": [{"overall": 0.5}], "best_weights": None},
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


class _Code:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_a_checkpoint_holding_pickled_code_is_refused(tmp_path):
    ckpt = Checkpointer(tmp_path / "ckpt", "run-a")
    ckpt.folder.mkdir()
    torch.save({"run_key": "run-a", "x": _Code()}, ckpt.path)
    with pytest.raises(pickle.UnpicklingError):
        ckpt.load()
