"""The method study: the runs it queues and the table it makes from ``dvc exp show --json``."""

import pytest

from mtbert.study import Method, finished, run_name, study_runs, summarise


def exp(name: str, sst: float, cos: float) -> dict:
    metrics = {"sst_acc": sst, "para_acc": 0.8, "sts_pearson": 0.88, "overall": 0.7, "grad/cos_sst_para": cos}
    data = {"params": {}, "metrics": {"metrics/pretrain.json": {"data": metrics}}}
    return {"name": name, "revs": [{"rev": "abc", "name": name, "data": data}]}


SHOW = [
    {"rev": "workspace", "name": None, "data": {}, "experiments": None},
    {
        "rev": "f00",
        "name": "main",
        "experiments": [
            exp("study-sum-s1", 0.40, 0.1),
            exp("study-sum-s2", 0.44, 0.3),
            exp("study-swpcgrad-s1", 0.45, 0.0),
            exp("other-run", 0.99, 0.0),  # not part of the study
        ],
    },
]


def test_runs_queue_stage_one_per_method_and_seed_with_its_options():
    runs = study_runs([Method.parse("sum"), Method.parse("weighted:1,0.5,2")], [1, 2])
    assert len(runs) == 4
    assert runs[0] == ["dvc", "exp", "run", "--queue", "-n", "study-sum-s1", "-S", "train.grad=sum",
                       "-S", "train.grad_options={}", "-S", "train.seed=1", "pretrain"]  # fmt: skip
    assert "train.grad_options={weights: [1.0, 0.5, 2.0]}" in runs[3] and run_name(Method.parse("famo"), 3) == (
        "study-famo-s3"
    )


def test_runs_carry_settings_and_skip_finished_experiments():
    runs = study_runs([Method.parse("sum")], [1, 2, 3], "", ["data.raw_dir=/abs/raw"], skip=finished(SHOW))
    assert [r[5] for r in runs] == ["study-sum-s3"]  # s1 and s2 have metrics in SHOW
    assert runs[0][-2:] == ["-S", "data.raw_dir=/abs/raw"]  # no target: the whole pipeline
    assert finished(SHOW) == {"study-sum-s1", "study-sum-s2", "study-swpcgrad-s1"}  # not other-run


def test_table_gives_mean_and_standard_deviation_per_method():
    table = summarise(SHOW, [Method.parse("sum"), Method.parse("swpcgrad"), Method.parse("famo")], {"sum": 1.0})
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert "| 2 | 0.4200 ± 0.0283 |" in rows["sum"]  # sd of (0.40, 0.44) with n - 1
    assert "1.00×" in rows["sum"] and "0.200 ± 0.141" in rows["sum"]  # step cost, cosine of sst/para
    assert "| 1 | 0.4500 |" in rows["swpcgrad"]
    assert "| 0 | — |" in rows["famo"]  # no run yet
    assert "0.99" not in table


@pytest.mark.parametrize("text", ["weighted", "sum:1,2"])
def test_bad_method_specs_are_refused(text):
    with pytest.raises(ValueError, match=text.split(":")[0]):
        Method.parse(text)
