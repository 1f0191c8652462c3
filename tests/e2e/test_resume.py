"""SIGKILL a training stage mid-epoch; `dvc repro` resumes from the checkpoint and ends with the same metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from dvc_project import make_project, run, tiny_params


def _params(raw, model):
    params = tiny_params(raw, model)
    params["train"].update(epochs=2, steps_per_epoch=60, checkpoint_every=5)
    return params


def test_sigkill_then_repro_resumes_with_identical_metrics(tmp_path, tiny_raw_dir, tiny_model_dir):
    reference = make_project(tmp_path / "ref", _params(tiny_raw_dir, tiny_model_dir))
    run([sys.executable, "-m", "dvc", "repro", "pretrain"], reference)

    project = make_project(tmp_path / "killed", _params(tiny_raw_dir, tiny_model_dir))
    run([sys.executable, "-m", "dvc", "repro", "prepare"], project)
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    proc = subprocess.Popen(
        [sys.executable, "stages/pretrain.py"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = project / "checkpoints/pretrain/state.pt"
    deadline = time.time() + 120
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists(), "the stage ended before writing a checkpoint: nothing to resume"
    assert not (project / "metrics/pretrain.json").exists(), "the stage finished before it was killed"

    result = run([sys.executable, "-m", "dvc", "repro", "pretrain"], project)
    assert "resuming from checkpoint" in result.stdout + result.stderr
    assert json.loads((project / "metrics/pretrain.json").read_text()) == json.loads(
        (reference / "metrics/pretrain.json").read_text()
    )
    assert not state.exists()  # a finished stage removes its checkpoint
