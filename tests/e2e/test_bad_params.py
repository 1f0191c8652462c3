"""A table of bad params values, each fed through the stage entry points of a reproduced tiny pipeline.

For every value: ``stages/validate.py`` (which ``dvc repro`` runs first) and the stage that reads the key each exit
with status 2 and one line ``error: params.yaml: <key>: ...`` naming the value and what is allowed, without a
traceback, and no output of the pipeline changes. The stages run in this process (``runpy``, as ``python
stages/<name>.py`` runs them), so the whole table takes seconds.
"""

from __future__ import annotations

import math
import runpy
import sys

import pytest
from dvc_project import copy_project, set_param, snapshot

NAN = math.nan

# (key, bad value, text the error line must hold after "error: params.yaml: ", stage script and its arguments)
CASES = [
    (
        "tasks",
        ["sst", "mnli"],
        "tasks: task 'mnli' has no definition in task_defs; defined: sst, para, sts",
        ["prepare.py"],
    ),
    (
        "task_defs.sst.kind",
        "ranking",
        "task_defs.sst.kind: got 'ranking', expected one of 'classification'",
        ["prepare.py"],
    ),
    ("task_defs.sts.label.min", 5, "task_defs.sts.label.min: expected min < max, got min 5.0, max 5.0", ["prepare.py"]),
    ("data.raw_dir", "no/such/folder", "data.raw_dir: 'no/such/folder' is not a folder", ["prepare.py"]),
    ("data.on_malformed", "ignore", "data.on_malformed: got 'ignore', expected one of 'skip', 'error'", ["prepare.py"]),
    ("model.name", "no/such/model", "model.name: 'no/such/model' is neither 'embedded', a folder", ["prepare.py"]),
    ("model.pooling", "max", "model.pooling: got 'max', expected one of 'cls', 'mean'", ["pretrain.py"]),
    ("model.max_length", 4, "model.max_length: must be >= 8, got 4", ["pretrain.py"]),
    ("model.max_length", 1000, "model.max_length: 1000 exceeds the model's 128 positions", ["predict.py", "multitask"]),
    ("model.dropout", 1.0, "model.dropout: must be in [0, 1), got 1.0", ["pretrain.py"]),
    (
        "model.pals",
        10,
        "model.pals: expected 0 (no PALs) or a size >= 1 divisible by pal_heads (12), got 10",
        ["pretrain.py"],
    ),
    (
        "model.heads",
        {"sst": {"encoding": "cross"}},
        "model.heads.sst.encoding: got 'cross', expected one of single",
        ["pretrain.py"],
    ),
    ("train.grad", "bogus", "train.grad: Unknown aggregator 'bogus'; valid names: ", ["pretrain.py"]),
    (
        "train.grad_options",
        {"speed": 2},
        "train.grad_options: Unknown option(s) ['speed'] for aggregator '",
        ["pretrain.py"],
    ),
    (
        "train.sampling",
        "sometimes",
        "train.sampling: unknown sampling mode 'sometimes'; allowed: oversample",
        ["pretrain.py"],
    ),
    ("train.epochs", 0, "train.epochs: must be >= 1, got 0", ["pretrain.py"]),
    ("train.lr", NAN, "train.lr: must be a finite number > 0, got nan", ["pretrain.py"]),
    ("train.device", "cuda", "train.device: 'cuda' was asked for, but ", ["pretrain.py"]),
    (
        "train.precision",
        "fp8",
        "train.precision: got 'fp8', expected one of 'auto', 'fp32', 'bf16', 'fp16'",
        ["pretrain.py"],
    ),
    ("dist.nproc", 0, "dist.nproc: must be >= 1, got 0", ["pretrain.py"]),
    (
        "dist.nnodes",
        2,
        "dist.rdzv_endpoint: 2 machines need a host:port they all reach (not localhost, not port 0), got 'localhost:0'",
        ["pretrain.py"],
    ),
    ("train.seed", -1, "train.seed: must be in [0, 2**63 - 1], got -1", ["pretrain.py"]),
    ("train.task_ratio", {"sst": -1}, "train.task_ratio.sst: expected an integer >= 0, got -1", ["pretrain.py"]),
    (
        "train.loss_weights",
        {"sst": -1.0},
        "train.loss_weights.sst: expected a finite number >= 0, got -1.0",
        ["pretrain.py"],
    ),
    ("train.milestones", [5], "train.milestones: expected increasing epochs in [1, 1], got [5]", ["pretrain.py"]),
    ("finetune.seeds", [], "finetune.seeds: expected a non-empty list of distinct seeds", ["finetune.py", "sst", "1"]),
    ("finetune.batch_size", 0, "finetune.batch_size: must be >= 1, got 0", ["finetune.py", "sst", "1"]),
    (
        "finetune.task_steps",
        {"sst": -3},
        "finetune.task_steps.sst: expected an integer >= 0, got -3",
        ["finetune.py", "sst", "1"],
    ),
    ("predict.batch_size", -1, "predict.batch_size: must be >= 1, got -1", ["predict.py", "multitask"]),
    ("predict.device", "mps", "predict.device: 'mps' was asked for, but none is visible", ["predict.py", "multitask"]),
    (
        "ensemble.members",
        ["multitask", "finetune-9"],
        "ensemble.members: unknown member 'finetune-9'; allowed: multitask, finetune-1, finetune-2",
        ["ensemble.py"],
    ),
    ("ensemble.members", ["multitask", "multitask"], "ensemble.members: 'multitask' is listed twice", ["ensemble.py"]),
    ("report.bootstrap", 10, "report.bootstrap: must be >= 100 resamples", ["report.py"]),
    ("report.errors", -1, "report.errors: must be >= 0, got -1", ["report.py"]),
]


@pytest.fixture(scope="module")
def project(tiny_pipeline, tmp_path_factory):
    return copy_project(tiny_pipeline[0], tmp_path_factory.mktemp("bad-params") / "p")


def run_stage(project, script: list[str], monkeypatch, capsys) -> tuple[int, str]:
    """Run ``stages/<script>`` as ``python stages/<script>`` would; its exit status and stderr."""
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "argv", [f"stages/{script[0]}", *script[1:]])
    monkeypatch.syspath_prepend(str(project / "stages"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(project / "stages" / script[0]), run_name="__main__")
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(("key", "value", "expected", "stage"), CASES, ids=[f"{c[0]}={c[1]}" for c in CASES])
def test_a_bad_value_stops_every_entry_point_with_one_line_and_touches_nothing(
    project, monkeypatch, capsys, key, value, expected, stage
):
    params = (project / "params.yaml").read_bytes()
    before = snapshot(project)
    set_param(project, key, value)
    try:
        for script in (["validate.py"], stage):
            code, err = run_stage(project, script, monkeypatch, capsys)
            assert code == 2, (script, err)
            assert err.count("\n") == 1 and "Traceback" not in err, err
            assert err.startswith(f"error: params.yaml: {expected}"), err
        assert snapshot(project) == before
    finally:
        (project / "params.yaml").write_bytes(params)


def test_the_table_covers_at_least_twenty_keys():
    assert len({key for key, *_ in CASES}) >= 20


def _bad_option_cases() -> list[tuple[str, dict, str]]:
    """Every documented option of every gradient method with a value it refuses ('bogus' is of the wrong type or
    out of its choices for all of them), and the rules met only once the run's tasks are known."""
    from mtbert.aggregators import AGGREGATOR_NAMES, aggregator_options

    cases = []
    for name in AGGREGATOR_NAMES:
        base = {"weights": [1.0, 1.0, 1.0]} if name == "weighted" else {}
        for option in aggregator_options(name):
            cases.append((name, {**base, option: "bogus"}, f"train.grad_options: Option `{option}` must be"))
    cases.append(
        ("weighted", {"weights": [1.0, 2.0]}, "train.grad_options: Option `weights` has 2 entries for 3 tasks")
    )
    return cases


OPTION_CASES = _bad_option_cases()


@pytest.mark.parametrize(("grad", "options", "expected"), OPTION_CASES, ids=[f"{c[0]}:{c[1]}" for c in OPTION_CASES])
def test_every_gradient_method_option_is_refused_by_validate(project, monkeypatch, capsys, grad, options, expected):
    """The rule lives in the method (one implementation); validate asks it before anything runs."""
    params = (project / "params.yaml").read_bytes()
    before = snapshot(project)
    set_param(project, "train.grad", grad)
    set_param(project, "train.grad_options", options)
    try:
        code, err = run_stage(project, ["validate.py"], monkeypatch, capsys)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"error: params.yaml: {expected}"), err
        assert snapshot(project) == before
    finally:
        (project / "params.yaml").write_bytes(params)


COMPONENT_CASES = [
    ("model.heads", {"para": {"loss": "hinge"}}, "model.heads.para.loss: got 'hinge'"),
    ("model.heads", {"sts": {"mlp": [0]}}, "model.heads.sts.mlp"),
    ("model.heads", {"sst": {"dropout": 1.5}}, "model.heads.sst.dropout"),
    ("model.pal_heads", 0, "model.pal"),
    ("train.anneal_to", -1.0, "train.anneal_to"),
    ("train.multipliers", {"sst": 0}, "train.multipliers"),
    ("train.layer_decay", 0.0, "train.layer_decay: must be in (0, 1]"),
    ("finetune.task_lr", {"sts": 0.0}, "finetune.task_lr.sts: expected a finite number > 0, got 0.0"),
]


@pytest.mark.parametrize(("key", "value", "expected"), COMPONENT_CASES, ids=[c[0] for c in COMPONENT_CASES])
def test_every_component_option_is_refused_by_validate(project, monkeypatch, capsys, key, value, expected):
    """Heads, PALs and samplers own their rules; validate asks each of them, naming the key."""
    params = (project / "params.yaml").read_bytes()
    before = snapshot(project)
    set_param(project, key, value)
    try:
        code, err = run_stage(project, ["validate.py"], monkeypatch, capsys)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"error: params.yaml: {expected}"), err
        assert snapshot(project) == before
    finally:
        (project / "params.yaml").write_bytes(params)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (["finetune.py", "sst", "x"], "error: stages/finetune.py: seed: 'x' is not one of 1, 2"),
        (["finetune.py", "mnli", "1"], "error: stages/finetune.py: task: 'mnli' is not one of sst, para, sts"),
        (["finetune.py", "sst"], "error: usage: python stages/finetune.py <task> <seed> (got 1 argument(s))"),
        (["predict.py", "finetune-9"], "error: stages/predict.py: member: 'finetune-9' is not one of multitask, "),
        (["leaderboard.py", "mnli"], "error: stages/leaderboard.py: task: 'mnli' is not one of sst, para, sts"),
        (["ensemble.py", "extra"], "error: usage: python stages/ensemble.py (got 1 argument(s))"),
    ],
)
def test_a_stages_own_bad_arguments_are_one_line_and_touch_nothing(project, monkeypatch, capsys, script, expected):
    before = snapshot(project)
    code, err = run_stage(project, script, monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(expected), err
    assert snapshot(project) == before
