"""End to end: every stage through ``dvc repro`` on a tiny random BERT and ~30 rows per file (seconds)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc_project import copy_project, make_project, run, tiny_params


@pytest.fixture(scope="module")
def repro(tiny_pipeline) -> tuple[Path, subprocess.CompletedProcess]:
    return tiny_pipeline


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_every_stage_runs_and_writes_its_outputs(repro):
    project, result = repro
    for stage in (
        "prepare",
        "pretrain",
        "finetune@sst-1",
        "finetune@para-1",
        "finetune@sts-2",
        "predict@multitask",
        "predict@finetune-1",
        "predict@finetune-2",
        "ensemble",
        "report",
    ):
        assert f"'{stage}'" in result.stdout, stage
    for task in ("sst", "para", "sts"):
        for seed in (1, 2):
            assert (project / f"models/finetune-{seed}/{task}/model.safetensors").is_file()
            assert json.loads((project / f"metrics/finetune-{seed}/{task}.json").read_text())["best_epoch"] in (0, 1)
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
                classes = {"sst": 5, "para": 2}.get(task, 0) if member != "ensemble" else 0
                assert rows[0] == ["id", "prediction"] + [f"p_{k}" for k in range(classes)]
                for r in rows[1:] if classes else []:  # a member's class probabilities: its prediction is the likeliest
                    probabilities = [float(p) for p in r[2:]]
                    assert probabilities[int(r[1])] >= max(probabilities) - 1e-6  # 6 decimals may tie
                    assert sum(probabilities) == pytest.approx(1, abs=1e-4)
                assert [r[0] for r in rows[1:]] == expected
                values = [float(r[1]) for r in rows[1:]]
                if task == "sst":
                    assert set(values) <= {0, 1, 2, 3, 4}
                elif task == "para":
                    assert set(values) <= {0, 1}
                else:
                    assert all(0 <= v <= 5 for v in values)


def test_leaderboard_files_hold_the_ensembles_predictions_in_the_courses_format(repro):
    project, _ = repro
    columns = {"sst": "Predicted_Sentiment", "para": "Predicted_Is_Paraphrase", "sts": "Predicted_Similiary"}
    for task, column in columns.items():
        for split in ("dev", "test"):
            lines = (project / f"predictions/{task}-{split}-output.csv").read_bytes().decode().split("\n")
            assert lines[0] == f"id \t {column} " and lines[-1] == ""
            ensemble = _read(project / f"predictions/ensemble/{task}-{split}.csv")[1:]
            assert lines[1:-1] == [f"{i} , {v} " for i, v in ensemble]


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


def test_the_ensemble_says_which_members_and_rule_each_task_used(repro):
    selection = json.loads((repro[0] / "predictions/ensemble/members.json").read_text())
    every = ["multitask", "finetune-1", "finetune-2"]
    assert selection == {
        "select": "all",
        "tasks": {
            "sst": {"rule": "rounded_mean", "members": every},
            "para": {"rule": "majority_vote", "members": every},
            "sts": {"rule": "mean", "members": every},
        },
    }


def test_greedy_selection_and_soft_voting_from_params(repro, tmp_path):
    project = copy_project(repro[0], tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ensemble"].update(select="greedy", rules={"sst": "mean_probability", "para": "mean_probability"})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run([sys.executable, "stages/ensemble.py"], project)
    assert "greedy selection on dev (so the ensemble's dev score is optimistic): sst: " in result.stdout
    selection = json.loads((project / "predictions/ensemble/members.json").read_text())
    metrics = json.loads((project / "metrics/ensemble.json").read_text())
    assert selection["select"] == "greedy"
    for task, key in (("sst", "sst_acc"), ("para", "para_acc"), ("sts", "sts_pearson")):
        chosen = selection["tasks"][task]["members"]
        assert chosen and set(chosen) <= {"multitask", "finetune-1", "finetune-2"}
        # forward selection starts from the best member, so on dev it never scores below any member
        assert metrics["ensemble"][key] >= max(metrics[m][key] for m in ("multitask", "finetune-1", "finetune-2"))
        assert metrics["ensemble"][key] >= metrics[chosen[0]][key]
    assert selection["tasks"]["sst"]["rule"] == "mean_probability"


def test_second_repro_is_up_to_date(repro):
    project, _ = repro
    result = run([sys.executable, "-m", "dvc", "repro"], project)
    assert "Data and pipelines are up to date." in result.stdout
    status = run([sys.executable, "-m", "dvc", "status"], project)
    assert "up to date" in status.stdout


def test_bad_raw_data_stops_prepare_with_one_line(tmp_path, tiny_raw_dir, tiny_model_dir):
    raw = tmp_path / "raw"
    shutil.copytree(tiny_raw_dir, raw)
    (raw / "sts-dev.csv").write_text("\tid\tsentence1\tsimilarity\n0\tx\ta\t1.0\n")
    project = make_project(tmp_path / "p", tiny_params(raw, tiny_model_dir))
    result = run([sys.executable, "stages/prepare.py"], project, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "sts-dev.csv" in last and "sentence2" in last


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ")
    return lines[-1]


def _swap_rows(rows: list[str]) -> None:
    rows[3], rows[4] = rows[4], rows[3]  # two ids swapped: same set, other order


def _half_class(rows: list[str]) -> None:
    row_id, _, probabilities = rows[2].split(",", 2)
    rows[2] = f"{row_id},2.5,{probabilities}"  # a class 2.5, the probabilities left as they were


@pytest.mark.parametrize(
    ("member", "edit", "expected"),
    [
        ("finetune-2/sts-dev.csv", _swap_rows, "finetune-2/sts-dev.csv:4: id: ids differ from member 'multitask'"),
        ("multitask/sst-dev.csv", _half_class, "multitask/sst-dev.csv:3: prediction: expected an integer"),
    ],
)
def test_bad_member_predictions_stop_the_ensemble_with_one_line(repro, tmp_path, member, edit, expected):
    project = copy_project(repro[0], tmp_path / "p")
    path = project / "predictions/members" / member
    rows = path.read_text().splitlines()
    edit(rows)
    path.chmod(0o644)  # DVC's cache may link outputs read-only
    path.write_text("\n".join(rows) + "\n")
    line = _one_line_error(run([sys.executable, "stages/ensemble.py"], project, check=False))
    assert expected in line


def test_missing_model_stops_predict_with_one_line(repro, tmp_path):
    project = copy_project(repro[0], tmp_path / "p")
    shutil.rmtree(project / "models/finetune-1/para")
    line = _one_line_error(run([sys.executable, "stages/predict.py", "finetune-1"], project, check=False))
    assert "models/finetune-1/para" in line


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda p: p["train"].update(lr="fast"), "train.lr: got 'fast', expected float"),
        (lambda p: p["model"].update(pooling="max"), "model.pooling: got 'max', expected one of 'cls', 'mean'"),
        (lambda p: p.update(extra=1), "unknown key extra; allowed keys:"),
    ],
)
def test_bad_params_stop_every_stage_before_any_work(repro, tmp_path, edit, expected):
    project = copy_project(repro[0], tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    edit(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in (
        ["prepare.py"],
        ["pretrain.py"],
        ["finetune.py", "sst", "1"],
        ["predict.py", "multitask"],
        ["ensemble.py"],
    ):
        line = _one_line_error(run([sys.executable, f"stages/{stage[0]}", *stage[1:]], project, check=False))
        assert expected in line and "params.yaml" in line, line


def test_a_bad_gradient_method_stops_pretraining_before_any_work(repro, tmp_path):
    project = copy_project(repro[0], tmp_path / "p")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["grad"] = "pcgard"
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    line = _one_line_error(run([sys.executable, "stages/pretrain.py"], project, check=False))
    assert "train.grad: Unknown aggregator 'pcgard'; valid names: " in line, line
