"""A DVC remote (a local folder here; S3, GCS, SSH alike): a second clone pulls the models and predictions and is up to
date without training; an experiment pushed from one clone is pulled into another with its metrics."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from dvc_project import run

pytestmark = pytest.mark.slow
DVC = [sys.executable, "-m", "dvc"]
GIT_USER = ["-c", "user.name=t", "-c", "user.email=t@t"]


def test_push_then_pull_into_a_fresh_clone_needs_no_training(tiny_pipeline, tmp_path):
    origin = tmp_path / "origin"
    shutil.copytree(tiny_pipeline[0], origin, symlinks=True, ignore=shutil.ignore_patterns("checkpoints"))
    run([*DVC, "remote", "add", "-d", "shared", str(tmp_path / "remote")], origin)
    run(["git", "add", "-A"], origin)
    run(["git", *GIT_USER, "commit", "-qm", "reproduced, with a remote"], origin)
    run([*DVC, "push"], origin)

    second = tmp_path / "second"
    run(["git", "clone", "-q", str(origin), str(second)], tmp_path)
    assert not (second / "models").exists()
    run([*DVC, "pull"], second)
    for name in ("models/multitask/model.safetensors", "predictions/ensemble", "data/prepared"):
        assert (second / name).exists(), name
    status = run([*DVC, "status", "--json"], second)
    assert json.loads(status.stdout) == {}  # every stage up to date: `dvc repro` would train nothing
    out = run([*DVC, "repro"], second)
    assert "Running stage" not in out.stdout

    # an experiment (a different ensemble: reruns only validate and ensemble) pushed from this clone ...
    run([*DVC, "exp", "run", "-n", "one-member", "-S", "ensemble.members=[multitask]"], second)
    run([*DVC, "exp", "push", "origin", "one-member"], second)
    # ... and pulled into another, with its metrics
    third = tmp_path / "third"
    run(["git", "clone", "-q", str(origin), str(third)], tmp_path)
    run([*DVC, "exp", "pull", "origin", "one-member"], third)
    shown = json.loads(run([*DVC, "exp", "show", "--json"], third).stdout)
    assert "one-member" in json.dumps(shown)
    run([*DVC, "exp", "apply", "one-member"], third)
    pushed = json.loads((second / "metrics/ensemble.json").read_text())
    assert json.loads((third / "metrics/ensemble.json").read_text()) == pushed
    assert (third / "predictions/ensemble").exists()
