"""The tiny pipeline with 2 training processes (torchrun, gloo) through ``dvc repro``, killed mid-pretrain and
resumed, ends with the metrics of a 1-process run.

Dropout is off in both runs (its masks differ between processes); what remains is the float noise of padding each
rank's half-batch to its own length: metrics agree to 1e-4 (the dev sets hold 30 rows, so one flipped prediction
would move an accuracy by 0.03).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dvc_project import make_project, run, tiny_params
from transformers import AutoConfig, AutoModel, AutoTokenizer

pytestmark = pytest.mark.slow
METRICS = ("pretrain.json", "ensemble.json", "finetune-1/sst.json", "finetune-2/sts.json", "finetune-1/para.json")


def no_dropout_model(source: Path, folder: Path) -> Path:
    config = AutoConfig.from_pretrained(source)
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    AutoModel.from_pretrained(source, config=config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def params(raw: Path, model: Path, nproc: int) -> dict:
    p = tiny_params(raw, model)
    p["model"]["dropout"] = 0.0
    p["train"].update(steps_per_epoch=20, checkpoint_every=2)
    p["dist"] = {"nproc": nproc, "nnodes": 1, "rdzv_endpoint": "localhost:0", "rdzv_id": "test"}
    return p


def test_two_processes_killed_and_resumed_match_one_process(tmp_path, tiny_raw_dir, tiny_model_dir):
    model = no_dropout_model(tiny_model_dir, tmp_path / "model")
    one = make_project(tmp_path / "one", params(tiny_raw_dir, model, 1))
    run([sys.executable, "-m", "dvc", "repro"], one)

    two = make_project(tmp_path / "two", params(tiny_raw_dir, model, 2))
    run([sys.executable, "-m", "dvc", "repro", "prepare"], two)
    env = {**os.environ, "PYTHONPATH": str(two / "src"), "HF_HUB_OFFLINE": "1"}
    stage = subprocess.Popen([sys.executable, "stages/pretrain.py"], cwd=two, env=env, stdout=subprocess.DEVNULL)
    state = two / "checkpoints/pretrain/state.pt"
    deadline = time.time() + 300
    while not state.exists() and stage.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert stage.poll() is None, "pretrain ended before its first checkpoint"
    os.kill(stage.pid, signal.SIGKILL)  # the launcher only (torchrun's workers run in a session of their own)
    stage.wait()
    written = state.stat().st_mtime_ns
    time.sleep(3)  # a surviving worker would checkpoint again within a second
    assert state.stat().st_mtime_ns == written, "the workers outlived their launcher"
    out = run([sys.executable, "-m", "dvc", "repro"], two)
    assert "launching 2 processes" in out.stdout and "resuming from checkpoint" in out.stdout

    for name in METRICS:
        a = json.loads((one / "metrics" / name).read_text())
        b = json.loads((two / "metrics" / name).read_text())
        assert a.keys() == b.keys(), name
        for key, value in a.items():
            assert b[key] == pytest.approx(value, abs=1e-4), (name, key)
    run([sys.executable, "-m", "dvc", "status", "--quiet"], two)  # up to date: nothing left to run
    assert not (two / "checkpoints/pretrain").exists()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_machines_on_one_match_one_process(tmp_path, tiny_raw_dir, tiny_model_dir):
    """The README's recipe for several machines, run on this one: two launchers of stage 1, ``dist.nnodes: 2`` and
    one process each, meeting at 127.0.0.1 on a fixed port, in the same folder (the shared file system); the
    trained model is the one-process run's (dropout off), and only rank 0 wrote it."""
    model = no_dropout_model(tiny_model_dir, tmp_path / "model")
    one = make_project(tmp_path / "one", params(tiny_raw_dir, model, 1))
    run([sys.executable, "-m", "dvc", "repro", "pretrain"], one)

    nodes = params(tiny_raw_dir, model, 1)
    nodes["dist"].update(nnodes=2, rdzv_endpoint=f"127.0.0.1:{free_port()}")
    two = make_project(tmp_path / "two", nodes)
    run([sys.executable, "-m", "dvc", "repro", "prepare"], two)
    env = {**os.environ, "PYTHONPATH": str(two / "src"), "HF_HUB_OFFLINE": "1", "GLOO_SOCKET_IFNAME": "lo"}
    launchers = [
        subprocess.Popen([sys.executable, "stages/pretrain.py"], cwd=two, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [launcher.communicate(timeout=600)[0] for launcher in launchers]
    assert [launcher.returncode for launcher in launchers] == [0, 0], outputs
    assert all("launching 2 processes" in out and "--nnodes=2" in out for out in outputs)
    a = json.loads((one / "metrics/pretrain.json").read_text())
    b = json.loads((two / "metrics/pretrain.json").read_text())
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert b[key] == pytest.approx(value, abs=1e-4), key
    from safetensors.torch import load_file

    weights = [load_file(str(p / "models/multitask/model.safetensors")) for p in (one, two)]
    for name, tensor in weights[0].items():
        assert (weights[1][name] - tensor).abs().max() <= 1e-4, name
