"""End to end: a bad params value stops ``dvc repro`` and ``dvc exp run`` at the ``validate`` stage, before DVC
deletes any stage's outputs; a valid change reruns only the stages that read the changed key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from dvc_project import make_project, run, set_param, snapshot, tiny_params

DVC = [sys.executable, "-m", "dvc"]
MARK = "data/validated.txt"


def _stages_run(result: subprocess.CompletedProcess) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", result.stdout)


def _assert_stopped_by_validate(result: subprocess.CompletedProcess, key: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: params.yaml: {key}: "), errors[0]
    assert _stages_run(result) == ["validate"], result.stdout


def _validate(folder: Path) -> subprocess.CompletedProcess:
    """``python stages/validate.py`` in ``folder`` (its params.yaml, its data/)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, str(ROOT / "stages/validate.py")], cwd=folder, env=env, capture_output=True, text=True
    )


def test_validate_names_the_bad_key_and_writes_a_mark_that_does_not_depend_on_the_values(tmp_path):
    (tmp_path / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    set_param(tmp_path, "data.raw_dir", str(tmp_path))  # any folder: validate only checks that it is there
    (tmp_path / MARK).parent.mkdir()
    (tmp_path / MARK).write_text("from an earlier run")
    set_param(tmp_path, "train.grad", "bogus")
    bad = _validate(tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert bad.stderr.startswith("error: params.yaml: train.grad: ") and bad.stderr.count("\n") == 1, bad.stderr
    assert (tmp_path / MARK).read_text() == "from an earlier run"
    marks = []
    for grad in ("sum", "pcgrad"):
        set_param(tmp_path, "train.grad", grad)
        assert _validate(tmp_path).returncode == 0
        marks.append((tmp_path / MARK).read_bytes())
    assert marks[0] == marks[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_raw_dir, tiny_model_dir) -> Path:
    """The whole tiny pipeline, reproduced once."""
    project = make_project(tmp_path_factory.mktemp("project"), tiny_params(tiny_raw_dir, tiny_model_dir))
    run([*DVC, "repro"], project)
    return project


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        pytest.param(lambda p: (set_param(p, "train.grad", "bogus"), [*DVC, "repro"])[1], id="dvc repro"),
        pytest.param(lambda p: [*DVC, "exp", "run", "-S", "train.grad=bogus"], id="dvc exp run -S"),
    ],
)
def test_a_bad_value_stops_the_pipeline_before_any_output_is_deleted(project, command):
    params = (project / "params.yaml").read_bytes()
    before = snapshot(project)
    assert any(path.startswith("models/") for path in before)
    try:
        _assert_stopped_by_validate(run(command(project), project, check=False), "train.grad")
        after = snapshot(project)
        assert sorted(after) == sorted(before), "outputs appeared or disappeared"
        assert [path for path in before if after[path] != before[path]] == [], "outputs changed"
    finally:
        (project / "params.yaml").write_bytes(params)  # -S edits params.yaml in the workspace


@pytest.mark.slow
def test_a_valid_change_reruns_only_the_stages_that_read_it(project):
    models = {path: data for path, data in snapshot(project).items() if path.startswith("models/")}
    set_param(project, "ensemble.members", ["multitask", "finetune-1"])
    stages = _stages_run(run([*DVC, "repro"], project))
    assert stages[:2] == ["validate", "ensemble"]
    # the leaderboard files and the report read the ensemble's predictions (the report ensemble.members too)
    assert sorted(stages[2:]) == ["leaderboard@para", "leaderboard@sst", "leaderboard@sts", "report"]
    assert {path: data for path, data in snapshot(project).items() if path.startswith("models/")} == models
