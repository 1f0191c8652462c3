"""End to end: every stage through ``dvc repro`` on a tiny random BERT and ~30 rows per file (seconds)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT


def _run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(cwd / "src"),
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tiny_params(raw_dir: Path, model_dir: Path) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["raw_dir"] = str(raw_dir)
    params["model"]["name"] = str(model_dir)
    params["model"]["max_length"] = 32
    for section in ("train", "finetune"):
        params[section].update(epochs=2, steps_per_epoch=3, batch_size=4, checkpoint_every=2)
    params["finetune"]["seeds"] = [1, 2]
    params["finetune"]["task_steps"] = {}
    params["ensemble"]["members"] = ["multitask", "finetune-1", "finetune-2"]
    return params


def make_project(folder: Path, params: dict) -> Path:
    """A fresh git + DVC project holding this repository's pipeline, with ``params``."""
    for name in ("stages", "src"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q", "-b", "main"], folder)
    _run([sys.executable, "-m", "dvc", "init", "-q"], folder)
    _run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], folder)
    _run(["git", "add", "-A"], folder)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], folder)
    return folder


@pytest.fixture(scope="module")
def repro(tmp_path_factory, tiny_raw_dir, tiny_model_dir) -> tuple[Path, subprocess.CompletedProcess]:
    project = make_project(tmp_path_factory.mktemp("project"), tiny_params(tiny_raw_dir, tiny_model_dir))
    return project, _run([sys.executable, "-m", "dvc", "repro"], project)


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_every_stage_runs_and_writes_its_outputs(repro):
    project, result = repro
    for stage in (
        "prepare",
        "pretrain",
        "finetune@sst",
        "finetune@para",
        "finetune@sts",
        "predict@multitask",
        "predict@finetune-1",
        "predict@finetune-2",
        "ensemble",
    ):
        assert f"'{stage}'" in result.stdout, stage
    for task in ("sst", "para", "sts"):
        for seed in (1, 2):
            assert (project / f"models/finetune/{task}/seed-{seed}/model.safetensors").is_file()
    assert (project / "models/multitask/model.safetensors").is_file()
    assert (project / "dvclive/pretrain/plots/metrics/overall.tsv").is_file()


def test_prepare_reports_the_broken_quora_row(repro):
    project, _ = repro
    report = json.loads((project / "metrics/prepare.json").read_text())
    assert report["skipped"]["para_train"] == 1
    assert report["skipped_rows"][0].endswith(
        "is_duplicate: empty label (broken quoting? field 'sentence2' has an unmatched '\"')"
    )
    assert ":6: " in report["skipped_rows"][0]  # header is line 1, the broken row was inserted as line 6
    assert report["rows"]["para_train"] == 30


def test_predictions_have_one_row_per_input_id_in_order(repro, tiny_raw_dir):
    project, _ = repro
    for member in ("members/multitask", "members/finetune-1", "members/finetune-2", "ensemble"):
        for stem, task in (("ids-sst", "sst"), ("quora", "para"), ("sts", "sts")):
            for split, raw in (("dev", "dev"), ("test", "test-student")):
                rows = _read(project / f"predictions/{member}/{task}-{split}.csv")
                expected = [r[1] for r in _read_tsv(tiny_raw_dir / f"{stem}-{raw}.csv")]
                assert rows[0] == ["id", "prediction"]
                assert [r[0] for r in rows[1:]] == expected
                values = [float(r[1]) for r in rows[1:]]
                if task == "sst":
                    assert set(values) <= {0, 1, 2, 3, 4}
                elif task == "para":
                    assert set(values) <= {0, 1}
                else:
                    assert all(0 <= v <= 5 for v in values)


def _read_tsv(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f, delimiter="\t"))[1:]


def test_ensemble_metrics_cover_every_member_and_the_overall_score(repro):
    project, _ = repro
    metrics = json.loads((project / "metrics/ensemble.json").read_text())
    assert set(metrics) == {"multitask", "finetune-1", "finetune-2", "ensemble"}
    for scores in metrics.values():
        assert set(scores) == {"sst_acc", "para_acc", "sts_pearson", "overall"}
        expected = (scores["sst_acc"] + scores["para_acc"] + (1 + scores["sts_pearson"]) / 2) / 3
        assert scores["overall"] == pytest.approx(expected)


def test_second_repro_is_up_to_date(repro):
    project, _ = repro
    result = _run([sys.executable, "-m", "dvc", "repro"], project)
    assert "Data and pipelines are up to date." in result.stdout
    status = _run([sys.executable, "-m", "dvc", "status"], project)
    assert "up to date" in status.stdout


def test_bad_raw_data_stops_prepare_with_one_line(tmp_path, tiny_raw_dir, tiny_model_dir):
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw_dir, raw)
    (raw / "sts-dev.csv").write_text("\tid\tsentence1\tsimilarity\n0\tx\ta\t1.0\n")
    project = make_project(tmp_path / "p", tiny_params(raw, tiny_model_dir))
    result = _run([sys.executable, "stages/prepare.py"], project, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "sts-dev.csv" in last and "sentence2" in last


def _copy_project(project: Path, dest: Path) -> Path:
    shutil.copytree(project, dest, symlinks=True, ignore=shutil.ignore_patterns(".dvc", ".git", "checkpoints"))
    return dest


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ")
    return lines[-1]


def _swap_rows(rows: list[str]) -> None:
    rows[3], rows[4] = rows[4], rows[3]  # two ids swapped: same set, other order


def _half_class(rows: list[str]) -> None:
    rows[2] = rows[2].split(",")[0] + ",2.5"


@pytest.mark.parametrize(
    ("member", "edit", "expected"),
    [
        ("finetune-2/sts-dev.csv", _swap_rows, "finetune-2/sts-dev.csv:4: id: ids differ from member 'multitask'"),
        ("multitask/sst-dev.csv", _half_class, "multitask/sst-dev.csv:3: prediction: expected an integer"),
    ],
)
def test_bad_member_predictions_stop_the_ensemble_with_one_line(repro, tmp_path, member, edit, expected):
    project = _copy_project(repro[0], tmp_path / "p")
    path = project / "predictions/members" / member
    rows = path.read_text().splitlines()
    edit(rows)
    path.chmod(0o644)  # DVC's cache may link outputs read-only
    path.write_text("\n".join(rows) + "\n")
    line = _one_line_error(_run([sys.executable, "stages/ensemble.py"], project, check=False))
    assert expected in line


def test_missing_model_stops_predict_with_one_line(repro, tmp_path):
    project = _copy_project(repro[0], tmp_path / "p")
    shutil.rmtree(project / "models/finetune/para")
    line = _one_line_error(_run([sys.executable, "stages/predict.py", "finetune-1"], project, check=False))
    assert "models/finetune/para/seed-1" in line


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p["train"].update(lr="fast"), "train.lr: got 'fast', expected float"),
        (lambda p: p["train"].update(grad="pcgard"), "train.grad: got 'pcgard', expected one of"),
        (lambda p: p["model"].update(pooling="max"), "model.pooling: got 'max', expected one of 'cls', 'mean'"),
        (lambda p: p.update(extra=1), "unknown key extra; allowed keys:"),
    ],
)
def test_bad_params_stop_every_stage_before_any_work(repro, tmp_path, edit, expected):
    project = _copy_project(repro[0], tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    edit(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in (
        ["prepare.py"],
        ["pretrain.py"],
        ["finetune.py", "sst"],
        ["predict.py", "multitask"],
        ["ensemble.py"],
    ):
        line = _one_line_error(_run([sys.executable, f"stages/{stage[0]}", *stage[1:]], project, check=False))
        assert expected in line and "params.yaml" in line, line
