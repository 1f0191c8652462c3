"""End to end: a fourth task added through params.yaml alone (a definition in ``task_defs`` and its name in
``tasks``, its files in ``data.raw_dir``) runs through every stage of ``dvc repro``, and its fine-tuned model predicts
with ``mtbert predict`` from its folder alone."""

from __future__ import annotations

import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WORDS, write_cs224n
from dvc_project import make_project, run, tiny_params

REL = {  # sentence pairs scored in [1, 3]: a pair-regression whose range is not STS's
    "kind": "pair-regression",
    "files": {"train": "rel-train.csv", "dev": "rel-dev.csv", "test": "rel-test.csv"},
    "text_columns": ["first", "second"],
    "label": {"column": "score", "min": 1, "max": 3},
    "class_names": [],
    "rules": ["mean"],
    "leaderboard_column": "Predicted_Score",
}


def write_rel(folder: Path, n: int = 30) -> None:
    rng = random.Random(1)
    for split in ("train", "dev", "test"):
        lines = ["\t".join(["id", "first", "second"] + (["score"] if split != "test" else []))]
        for i in range(n):
            pair = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(2)]
            lines.append(
                "\t".join([f"rel-{split}-{i}", *pair] + ([f"{rng.uniform(1, 3):.2f}"] if split != "test" else []))
            )
        (folder / f"rel-{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


pytestmark = pytest.mark.slow  # a whole dvc repro of four tasks: about 3 minutes on 2 cores


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model_dir) -> Path:
    raw = write_cs224n(tmp_path_factory.mktemp("raw4"))
    write_rel(raw)
    params = tiny_params(raw, tiny_model_dir)
    params["task_defs"]["rel"] = REL
    params["tasks"] = ["sst", "para", "sts", "rel"]
    params["finetune"]["seeds"] = [1]
    params["ensemble"]["members"] = ["multitask", "finetune-1"]
    folder = make_project(tmp_path_factory.mktemp("project4"), params)
    run([sys.executable, "-m", "dvc", "repro"], folder)
    return folder


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_the_fourth_task_has_predictions_metrics_report_and_leaderboard_files(project):
    ids = {split: [f"rel-{split}-{i}" for i in range(30)] for split in ("dev", "test")}
    for member in ("members/multitask", "members/finetune-1", "ensemble"):
        for split in ("dev", "test"):
            rows = _rows(project / f"predictions/{member}/rel-{split}.csv")
            assert rows[0] == ["id", "prediction"] and [r[0] for r in rows[1:]] == ids[split]
            assert all(1 <= float(r[1]) <= 3 for r in rows[1:])  # decoded into the label's range
    metrics = json.loads((project / "metrics/ensemble.json").read_text())
    assert set(metrics) == {"multitask", "finetune-1", "ensemble"}
    for scores in metrics.values():
        assert set(scores) == {"sst_acc", "para_acc", "sts_pearson", "rel_pearson", "overall"}
        normalised = [scores["sst_acc"], scores["para_acc"], (1 + scores["sts_pearson"]) / 2]
        assert scores["overall"] == pytest.approx((sum(normalised) + (1 + scores["rel_pearson"]) / 2) / 4)
    page = (project / "reports/index.html").read_text(encoding="utf-8")
    assert "rel_pearson" in page and (project / "reports/errors-rel.csv").is_file()
    for split in ("dev", "test"):
        lines = (project / f"predictions/rel-{split}-output.csv").read_text().split("\n")
        assert lines[0] == "id \t Predicted_Score " and len(lines) == 32


def test_its_model_predicts_from_its_folder_alone(project, tmp_path):
    model = project / "models/finetune-1/rel"
    assert json.loads((model / "mtbert.json").read_text())["task_defs"]["rel"]["label"] == {
        "column": "score",
        "min": 1.0,
        "max": 3.0,
    }
    env = {"PYTHONPATH": str(project / "src"), "HF_HUB_OFFLINE": "1", "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(  # in an empty folder: no params.yaml to read
        [sys.executable, "-m", "mtbert.cli", "predict", "--model", str(model), "good film", "dull plot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    value = float(result.stdout.split(":")[1].split()[0])
    assert result.stdout.startswith("rel: ") and "(similarity, 1 to 3)" in result.stdout and 1 <= value <= 3
