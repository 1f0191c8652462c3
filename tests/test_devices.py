"""Tests for mtbert.devices: a device or precision this machine cannot give is named before any work."""

from __future__ import annotations

import pytest
import torch

from mtbert import devices
from mtbert.devices import autocast_dtype, available_devices, pick_device


def test_cpu_is_always_available_and_auto_picks_the_best(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert available_devices() == ["cpu"]
    assert pick_device("auto") == pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert available_devices() == ["cuda", "cpu"] and pick_device("auto") == torch.device("cuda")


def test_a_missing_gpu_says_what_was_asked_for_and_what_is_here(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(devices.torch.version, "cuda", None)
    with pytest.raises(ValueError) as info:
        pick_device("cuda")
    assert str(info.value) == "device: 'cuda' was asked for, but this torch has no CUDA; available here: auto, cpu"
    with pytest.raises(ValueError, match="device: 'mps' was asked for, but none is visible"):
        pick_device("mps")


def test_auto_precision_is_fp32_on_the_cpu_and_bf16_only_on_a_gpu_that_has_it(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("fp32", cuda) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert autocast_dtype("auto", cuda) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert autocast_dtype("auto", cuda) is None  # not fp16: fp16 without loss scaling can underflow the gradients
    with pytest.raises(ValueError, match="precision: 'bf16' was asked for, but this GPU does not support it"):
        autocast_dtype("bf16", cuda)
    assert autocast_dtype("bf16", cpu) == torch.bfloat16 and autocast_dtype("fp16", cuda) == torch.float16


def test_a_gpu_runs_random_state_is_checkpointed_and_restored(monkeypatch):
    """Without a GPU here: torch.cuda's state functions stand in, and are called with the run's device."""
    import torch

    from mtbert.devices import restore_rng, rng_state

    calls = []
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: calls.append(("get", device)) or torch.ones(3))
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append(("set", device, state.sum())))
    gpu = torch.device("cuda", 1)
    state = rng_state(gpu)
    assert calls == [("get", gpu)] and torch.equal(state["cpu"], torch.get_rng_state())
    expected = torch.rand(2)
    restore_rng(state, gpu)
    assert calls[-1] == ("set", gpu, 3.0)
    assert torch.equal(torch.rand(2), expected)  # the CPU stream too
    assert rng_state(torch.device("cpu"))["cuda"] is None
    restore_rng(torch.get_rng_state(), torch.device("cpu"))  # a checkpoint of before: the CPU state alone
    assert len(calls) == 2
