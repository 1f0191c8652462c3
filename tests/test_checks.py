"""Tests for mtbert.checks: what the params name must exist on this machine, checked before anything loads."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from mtbert.checks import check_machine
from mtbert.errors import ConfigError


def error_of(cfg) -> str:
    with pytest.raises(ConfigError) as info:
        check_machine(cfg)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_the_tiny_setup_passes(prepared, tiny_model_dir):
    check_machine(tiny_config(prepared, tiny_model_dir))


def test_a_raw_data_folder_that_is_not_there_is_named(prepared, tiny_model_dir, tmp_path):
    message = error_of(tiny_config(prepared, tiny_model_dir, data={"raw_dir": str(tmp_path / "nope")}))
    assert message.startswith(f"data.raw_dir: {str(tmp_path / 'nope')!r} is not a folder; it holds the CS224N CSV")


def test_a_model_name_that_does_not_resolve_offline_is_named(prepared, tiny_model_dir, tmp_path):
    for name in ("no/such/model", str(tmp_path)):  # nothing there; a folder without a config.json
        message = error_of(tiny_config(prepared, tiny_model_dir, model={"name": name}))
        assert message.startswith(f"model.name: {name!r} is neither 'embedded', a folder holding a model's config")


def test_max_length_beyond_the_models_positions_is_named(prepared, tiny_model_dir):
    message = error_of(tiny_config(prepared, tiny_model_dir, model={"max_length": 129}))
    assert message == "model.max_length: 129 exceeds the model's 128 positions"  # the tiny BERT has 128


@pytest.mark.parametrize("section", ["train", "finetune"])
def test_freezing_every_layer_is_named(prepared, tiny_model_dir, section):
    layers = 2  # the tiny BERT's
    check_machine(tiny_config(prepared, tiny_model_dir, **{section: {"freeze_layers": layers - 1}}))
    message = error_of(tiny_config(prepared, tiny_model_dir, **{section: {"freeze_layers": layers}}))
    assert message == f"{section}.freeze_layers: {layers} of the model's {layers} layers; at least one must train"


@pytest.mark.parametrize("section", ["train", "finetune", "predict"])
def test_a_device_that_is_not_here_is_named_with_what_is(prepared, tiny_model_dir, monkeypatch, section):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    message = error_of(tiny_config(prepared, tiny_model_dir, **{section: {"device": "cuda"}}))
    assert message.startswith(f"{section}.device: 'cuda' was asked for, but ")
    assert message.endswith("available here: auto, cpu")


def test_bf16_on_a_gpu_without_it_is_named(prepared, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    cfg = tiny_config(prepared, tiny_model_dir, predict={"device": "cuda", "precision": "bf16"})
    assert error_of(cfg).startswith("predict.precision: 'bf16' was asked for, but this GPU does not support it")


def test_more_gpu_processes_than_gpus_are_refused(prepared, tiny_model_dir, monkeypatch):
    """One process per GPU: checked against this machine's count (a machine with one GPU, faked)."""
    monkeypatch.setattr("mtbert.checks.pick_device", lambda name: torch.device(name if name != "auto" else "cuda"))
    monkeypatch.setattr("mtbert.checks.autocast_dtype", lambda precision, device: None)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpu = {"device": "cuda"}
    cfg = tiny_config(prepared, tiny_model_dir, train=gpu, finetune=gpu, dist={"nproc": 2})
    assert error_of(cfg) == "dist.nproc: 2 processes, one per GPU, but this machine has 1"
    check_machine(tiny_config(prepared, tiny_model_dir, train=gpu, finetune=gpu, dist={"nproc": 1}))
    check_machine(tiny_config(prepared, tiny_model_dir, dist={"nproc": 2}))  # CPU processes: any number
