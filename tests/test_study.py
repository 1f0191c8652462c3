"""The method study: the runs it queues, what it reads back from ``dvc exp show --json``, and its tables."""

import shutil
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from mtbert.study import (
    Method,
    collect,
    finished,
    parse_methods,
    run_name,
    study_runs,
    summarise,
    summarise_pipelines,
)

ROOT = Path(__file__).resolve().parents[1]


def exp(name: str, sst: float, cos: float, ensemble: dict | None = None) -> dict:
    pretrain = {"sst_acc": sst, "para_acc": 0.8, "sts_pearson": 0.88, "overall": 0.7, "grad/cos_sst_para": cos}
    metrics = {"metrics/pretrain.json": {"data": pretrain}}
    if ensemble:
        metrics["metrics/ensemble.json"] = {"data": ensemble}
    params = {"params.yaml": {"data": {"train": {"grad": name.split("-")[1], "grad_options": {}, "seed": 1}}}}
    data = {"params": params, "metrics": metrics}
    return {"name": name, "revs": [{"rev": "abc", "name": name, "data": data}]}


def scores(overall: float) -> dict:
    return {"sst_acc": 0.5, "para_acc": 0.8, "sts_pearson": 0.88, "overall": overall}


DONE = {"study-sum-s1", "study-sum-s2", "study-swpcgrad-s1", "other-run", "pipeline-sum-s0", "pipeline-upgrad-s0"}
SHOW = [
    {"rev": "workspace", "name": None, "data": {}, "experiments": None},
    {
        "rev": "f00",
        "name": "main",
        "experiments": [
            exp("study-sum-s1", 0.40, 0.1),
            exp("study-sum-s2", 0.44, 0.3, {"ensemble": scores(0.76)}),  # the baseline's ensemble metrics
            exp("study-swpcgrad-s1", 0.45, 0.0),
            exp("other-run", 0.99, 0.0),  # not part of the study
            exp("pipeline-sum-s0", 0.46, 0.0, {"ensemble": scores(0.76), "m-1": scores(0.75), "m-2": scores(0.74)}),
            exp("pipeline-upgrad-s0", 0.46, 0.0),  # stage 1 done, the ensemble not (yet)
            exp("study-famo-s1", 0.47, 0.0, {"ensemble": scores(0.7)}),  # running: not in DONE
        ],
    },
]


def test_runs_queue_stage_one_per_method_and_seed_with_its_options():
    runs = study_runs([Method.parse("sum"), Method.parse("weighted:1,0.5,2")], [1, 2])
    assert len(runs) == 4
    assert runs[0] == ["dvc", "exp", "run", "--queue", "-n", "study-sum-s1", "-S", "train.grad=sum",
                       "-S", "train.grad_options={}", "-S", "train.seed=1", "pretrain"]  # fmt: skip
    assert runs[3][5] == "study-weighted-1_0p5_2-s2" and run_name(Method.parse("famo"), 3) == "study-famo-s3"


def test_the_overrides_give_the_params_dvc_would_run_with(tmp_path):
    """What DVC does with the ``-S`` values (its Hydra overrides) on the project's params.yaml: the options land
    under ``train.grad_options``; the form written before 2026-12-02, a filled mapping, is refused (tried below)."""
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    run = study_runs([Method.parse("weighted:1,0.5,2")], [3])[0]
    apply_overrides(params, [run[i + 1] for i, arg in enumerate(run) if arg == "-S"])
    train = yaml.safe_load(params.read_text())["train"]
    assert train["grad"] == "weighted" and train["seed"] == 3
    assert train["grad_options"] == {"weights": [1.0, 0.5, 2.0]}
    shutil.copy(ROOT / "params.yaml", params)
    with pytest.raises(Exception, match="Invalid `--set-param` value") as refused:  # the old form
        apply_overrides(params, ["train.grad_options={weights: [1, 0.5, 2]}"])
    assert "Could not override 'train.grad_options'" in str(refused.value.__cause__)
    assert yaml.safe_load(params.read_text())["train"]["grad_options"] == {}


def test_whole_pipeline_runs_have_their_own_names_and_carry_settings():
    record = collect(SHOW, DONE)
    runs = study_runs([Method.parse("sum")], [0, 1], "", ["data.raw_dir=/abs/raw"], skip=finished(record))
    assert [r[5] for r in runs] == ["pipeline-sum-s1"]  # s0 has its ensemble
    assert runs[0][-2:] == ["-S", "data.raw_dir=/abs/raw"]  # no target: the whole pipeline


def test_collect_reads_the_study_runs_and_finished_needs_each_kinds_metrics():
    record = collect(SHOW, DONE)
    assert set(record) == {"study-sum-s1", "study-sum-s2", "study-swpcgrad-s1", "pipeline-sum-s0",
                           "pipeline-upgrad-s0"}  # fmt: skip
    assert record["study-sum-s2"]["commit"] == "f00" and record["study-sum-s2"]["grad"] == "sum"
    assert record["study-sum-s2"]["pretrain"]["sst_acc"] == 0.44 and record["study-sum-s2"]["ensemble"] is None
    assert finished(record) == {"study-sum-s1", "study-sum-s2", "study-swpcgrad-s1", "pipeline-sum-s0"}


def test_table_gives_mean_and_standard_deviation_per_method():
    table = summarise(
        collect(SHOW, DONE), [Method.parse("sum"), Method.parse("swpcgrad"), Method.parse("famo")], {"sum": 1}
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "| 2 | 0.4200 ± 0.0283 |" in rows["sum"]  # sd of (0.40, 0.44) with n - 1; not the pipeline's 0.46
    assert "1.00×" in rows["sum"] and "0.200 ± 0.141" in rows["sum"]  # step cost, cosine of sst/para
    assert "| 1 | 0.4500 |" in rows["swpcgrad"]
    assert "| 0 | — |" in rows["famo"]  # no run yet
    assert "0.99" not in table


def test_pipeline_table_gives_stage_one_best_member_and_ensemble():
    table = summarise_pipelines(collect(SHOW, DONE), [Method.parse(m) for m in ("sum", "upgrad", "famo")])
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert rows["sum"] == "| sum | 1 | 0.7000 | 0.7500 | 0.5000 | 0.8000 | 0.8800 | 0.7600 |"
    assert rows["upgrad"].startswith("| upgrad | 0 | 0.7000 | — |") and "famo" not in rows  # no pipeline run
    assert summarise_pipelines(collect(SHOW, DONE), [Method.parse("famo")]) == ""  # no table at all


def test_a_method_list_keeps_each_weighted_arm_with_its_numbers():
    methods = parse_methods("sum,weighted:1,2,1,weighted:2,1,0.5,famo")
    assert [(m.grad, m.options) for m in methods] == [
        ("sum", {}),
        ("weighted", {"weights": [1.0, 2.0, 1.0]}),
        ("weighted", {"weights": [2.0, 1.0, 0.5]}),
        ("famo", {}),
    ]


@pytest.mark.parametrize("text", ["weighted", "sum:1,2"])
def test_bad_method_specs_are_refused(text):
    with pytest.raises(ValueError, match=text.split(":")[0]):
        Method.parse(text)


def test_a_superseded_run_kept_under_its_commit_is_left_out():
    record = collect(SHOW, DONE)
    name = next(n for n in record if n.startswith("study-"))
    method = Method.parse(record[name]["grad"])
    before = summarise(record, [method])
    record[f"{name}@abc1234"] = {**record[name], "pretrain": {**record[name]["pretrain"], "overall": 0.0}}
    assert summarise(record, [method]) == before  # the same n and means: the superseded run does not count
