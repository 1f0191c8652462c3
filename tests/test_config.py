"""Tests for mtbert.config: params.yaml -> typed, validated config; every bad key or value is one clear line."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml
from conftest import ROOT

from mtbert.aggregators import AGGREGATOR_NAMES
from mtbert.config import Config, HeadConfig, config_from_dict, load_config
from mtbert.errors import ConfigError, DataError
from mtbert.recipe import all_recipes

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def params(**changes) -> dict:
    """A copy of the repository's params with ``section__key=value`` changes."""
    data = copy.deepcopy(PARAMS)
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        if key:
            data[section][key] = value
        else:
            data[section] = value
    return data


def error_of(data: dict) -> str:
    """The error of loading ``data`` and building every recipe it asks for (what the validate stage does)."""
    with pytest.raises(ConfigError) as info:
        all_recipes(config_from_dict(data))
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, DataError)  # the CLI prints it as one line, without a traceback
    return message


def test_repository_params_load():
    cfg = config_from_dict(copy.deepcopy(PARAMS))
    assert isinstance(cfg, Config)
    assert cfg.tasks == ("sst", "para", "sts")
    assert cfg.train.grad in AGGREGATOR_NAMES
    assert cfg.train.lr == PARAMS["train"]["lr"]
    assert cfg.finetune.seeds == tuple(PARAMS["finetune"]["seeds"])
    assert cfg.ensemble.members == tuple(PARAMS["ensemble"]["members"])
    assert cfg.model.pooling == PARAMS["model"]["pooling"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.lr = 1.0  # type: ignore[misc]


def test_load_config_reads_the_file_it_is_given(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params(train__lr=3.5e-4, predict__batch_size=7)), encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.train.lr, cfg.predict.batch_size) == (3.5e-4, 7)
    assert load_config(ROOT / "params.yaml").tasks == tuple(PARAMS["tasks"])


@pytest.mark.parametrize("section", ["data", "model", "train", "finetune", "predict", "ensemble", "report"])
def test_every_key_of_a_section_is_required_and_a_missing_one_is_named(section):
    # params.yaml is the one place defaults live: the code has none to fall back on silently.
    for key in PARAMS[section]:
        data = params()
        del data[section][key]
        assert error_of(data).startswith(f"missing key {section}.{key}"), key
    data = params()
    del data[section]
    assert error_of(data).startswith(f"missing key {section}")


def test_floats_written_without_a_dot_are_accepted(tmp_path):
    path = tmp_path / "params.yaml"
    text = yaml.safe_dump(params(train__lr=0.5, train__head_lr=0.25, finetune__lr=0.125))
    text = (
        text.replace("lr: 0.5", "lr: 1e-4").replace("head_lr: 0.25", "head_lr: 2E-3").replace("lr: 0.125", "lr: 5.0e-5")
    )
    path.write_text(text, encoding="utf-8")
    assert yaml.safe_load(path.read_text())["train"]["lr"] == "1e-4"  # what PyYAML makes of it
    cfg = load_config(path)
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.train.head_lr == pytest.approx(2e-3)
    assert cfg.finetune.lr == pytest.approx(5e-5)
    assert config_from_dict(params(train__weight_decay=0)).train.weight_decay == 0.0  # an int for a float
    assert error_of(params(train__lr="fast")).startswith("train.lr: ")


def test_unknown_top_level_key():
    data = params()
    data["trian"] = {"epochs": 1}
    message = error_of(data)
    assert "trian" in message
    assert "allowed keys: data, dist, ensemble, finetune, model, predict, report, task_defs, tasks, train" in message


def test_unknown_nested_key():
    message = error_of(params(train__lrr=0.1))
    assert "train.lrr" in message
    assert "allowed keys:" in message
    for key in ("lr", "head_lr", "epochs", "grad", "grad_options"):
        assert key in message.split("allowed keys:")[1]


def test_wrong_type():
    message = error_of(params(train__epochs="two"))
    assert message.startswith("train.epochs: ")
    assert "'two'" in message and "int" in message


@pytest.mark.parametrize(("key", "value"), [("train__epochs", 2.0), ("train__epochs", True), ("model__name", 3)])
def test_wrong_scalar_types_are_not_coerced(key, value):
    assert key.replace("__", ".") in error_of(params(**{key: value}))


def test_invalid_choice_lists_the_choices():
    message = error_of(params(model__pooling="max"))
    assert message.startswith("model.pooling: ")
    assert "'max'" in message and "'cls', 'mean'" in message


def test_unknown_gradient_method_lists_valid_names():
    message = error_of(params(train__grad="gradnorm"))
    assert message.startswith("train.grad: ")
    assert "'gradnorm'" in message
    for name in AGGREGATOR_NAMES:
        assert name in message


def test_unknown_task():
    message = error_of(params(tasks=["sst", "mnli"]))
    assert message.startswith("tasks: ")
    assert "'mnli'" in message and "sst, para, sts" in message


@pytest.mark.parametrize(
    ("ensemble", "message"),
    [
        ({"rules": {"sts": "majority_vote"}}, "ensemble.rules.sts: got 'majority_vote', allowed: mean"),
        ({"rules": {"sst": "vote"}}, "ensemble.rules.sst: got 'vote', allowed: rounded_mean, mean_probability"),
        ({"rules": {"mnli": "mean"}}, "ensemble.rules: unknown task 'mnli'; allowed: sst, para, sts"),
        ({"select": "best"}, "ensemble.select: got 'best', expected one of 'all', 'greedy'"),
    ],
)
def test_bad_ensemble_options(ensemble, message):
    assert message in error_of(params(ensemble={**PARAMS["ensemble"], **ensemble}))


@pytest.mark.parametrize(
    ("task_lr", "message"),
    [
        ({"sts": 0}, "finetune.task_lr.sts: expected a finite number > 0, got 0"),
        ({"sts": float("inf")}, "finetune.task_lr.sts: expected a finite number > 0, got inf"),
        ({"mnli": 1e-5}, "finetune.task_lr: unknown task 'mnli'; allowed: sst, para, sts"),
    ],
)
def test_bad_per_task_fine_tuning_rates(task_lr, message):
    assert message in error_of(params(finetune={**PARAMS["finetune"], "task_lr": task_lr}))


def test_a_task_without_a_rule_gets_its_first():
    cfg = config_from_dict(params(ensemble={**PARAMS["ensemble"], "rules": {"sst": "mean_probability"}}))
    assert [cfg.ensemble_rule(t) for t in ("sst", "para", "sts")] == ["mean_probability", "majority_vote", "mean"]


def test_repeated_task():
    assert error_of(params(tasks=["sst", "sst"])).startswith("tasks: ")


def test_ensemble_member_not_produced_by_the_finetune_seeds():
    message = error_of(params(finetune__seeds=[1, 2], ensemble__members=["multitask", "finetune-3"]))
    assert message.startswith("ensemble.members: ")
    assert "'finetune-3'" in message
    assert "allowed: multitask, finetune-1, finetune-2" in message


@pytest.mark.parametrize(
    ("grad", "options", "named"),
    [("gradvac", {"beta": 2}, "beta"), ("gradvac", {"betta": 0.1}, "betta"), ("pcgrad", {"seed": -1}, "seed")],
)
def test_bad_grad_options(grad, options, named):
    message = error_of(params(train__grad=grad, train__grad_options=options))
    assert message.startswith("train.grad_options: ")
    assert named in message


def test_good_grad_options():
    cfg = config_from_dict(params(train__grad="gradvac", train__grad_options={"beta": 0.5, "group": "layer"}))
    assert cfg.train.grad_options == {"beta": 0.5, "group": "layer"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train__epochs", 0),
        ("finetune__batch_size", 0),
        ("train__warmup_ratio", 1.0),
        ("train__lr", 0),
        ("finetune__head_lr", -1e-3),
        ("model__dropout", 1.0),
        ("model__max_length", 4),
        ("finetune__seeds", []),
    ],
)
def test_out_of_range_values(key, value):
    assert error_of(params(**{key: value})).startswith(key.replace("__", "."))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("train__lr", float("nan")),
        ("train__head_lr", float("inf")),
        ("train__seed", -1),  # np.random.default_rng([seed, epoch]) raises in the sampler, mid-stage
        ("finetune__seeds", [-1]),
    ],
)
def test_non_finite_rates_and_negative_seeds_are_rejected(key, value):
    data = params(**{key: value}, ensemble__members=["multitask"])
    assert error_of(data).startswith(key.replace("__", "."))


def test_load_config_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: file not found"


def test_load_config_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("tasks: [sst\ntrain:\n  lr: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not valid YAML")


def test_load_config_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params(model__pooling="max")), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: model.pooling: ")


def test_load_config_top_level_list(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- sst\n- para\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "expected a mapping" in str(info.value)
    assert ": :" not in str(info.value)


# --- training options --------------------------------------------------------------------------------------


def with_train(**changes) -> dict:
    data = params()
    data["train"].update(changes)
    return data


def test_heads_and_per_task_options_are_read_as_written():
    heads = {"sts": {"encoding": "bi-cosine", "loss": "mse"}}
    cfg = config_from_dict(params(model__heads=heads, train__loss_weights={"sst": 0.25}))
    assert cfg.model.heads == {"sts": HeadConfig(encoding="bi-cosine", loss="mse")}
    assert cfg.train.loss_weights == {"sst": 0.25}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"sampling": "shuffled"},
            "train.sampling: unknown sampling mode 'shuffled'; allowed: oversample, undersample",
        ),
        ({"multipliers": {"sst": 0}}, "train.multipliers: must be an integer >= 1, got 0 for task 'sst'"),
        ({"multipliers": {"sst": 3}}, "train.multipliers: with sampling 'oversample' they only set the epoch"),
        ({"multipliers": {"mnli": 2}}, "train.multipliers: unknown task 'mnli'"),
        ({"loss_weights": {"sst": -0.5}}, "train.loss_weights.sst: expected a finite number >= 0, got -0.5"),
        ({"loss_weights": {"sst": "high"}}, "train.loss_weights.sst: got 'high', expected float"),
        ({"loss_weights": {"sst": 0, "para": 0, "sts": 0}}, "every training task has weight 0"),
        ({"anneal_to": 1.5}, "train.anneal_to: must lie in [0, 1], got 1.5"),
        (
            {"schedule": "exponential"},
            "train.schedule: got 'exponential', expected one of 'linear', 'multistep', 'cosine'",
        ),
        ({"milestones": [2]}, "train.milestones: expected increasing epochs in [1, 1], got [2]"),
        ({"epochs": 4, "milestones": [3, 1]}, "train.milestones: expected increasing epochs"),
        ({"gamma": 0}, "train.gamma: must be in (0, 1]"),
        ({"heads_only_first": 2, "heads_only_last": 1}, "train.heads_only_first: with heads_only_last, must be >= 0"),
        ({"pal_lr": float("nan")}, "train.pal_lr: must be a finite number > 0"),
        ({"layer_decay": 0}, "train.layer_decay: must be in (0, 1] (1: every layer at lr), got 0"),
        ({"layer_decay": 1.2}, "train.layer_decay: must be in (0, 1]"),
        ({"freeze_layers": -1}, "train.freeze_layers: must be >= 0, got -1"),
    ],
)
def test_bad_training_options(changes, message):
    assert message in error_of(with_train(**changes))


@pytest.mark.parametrize("sampling", ["sequential", "proportional", "annealed"])
def test_surgery_with_one_task_per_step_is_rejected(sampling):
    message = error_of(with_train(grad="pcgrad", sampling=sampling))
    assert message.startswith("train.grad: 'pcgrad' combines the gradients of several tasks in one step")
    assert f"sampling {sampling!r} puts a single task in each step" in message
    for grad in ("sum", "weighted"):  # a plain or weighted sum of one gradient is fine
        options = {"weights": [1, 1, 1]} if grad == "weighted" else {}
        assert all_recipes(config_from_dict(with_train(grad=grad, grad_options=options, sampling=sampling)))


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({"sst": {"encoding": "cross"}}, "model.heads.sst.encoding: got 'cross', expected one of single"),
        ({"para": {"loss": "hinge"}}, "model.heads.para.loss: got 'hinge', expected one of bce, mse"),
        ({"sts": {"encoding": "cross", "loss": "cosine-embedding"}}, "needs encoding 'bi-cosine'"),
        ({"sts": {"encoding": "bi-cosine", "mlp": [64]}}, "model.heads.sts.mlp: a bi-cosine head has no layers"),
        ({"sts": {"encodng": "cross"}}, "unknown key model.heads.sts.encodng; allowed keys: dropout, encoding"),
        ({"mnli": {}}, "model.heads: unknown task 'mnli'"),
        ({"para": {"mlp": [64, "wide"]}}, "model.heads.para.mlp[1]: got 'wide', expected int"),
    ],
)
def test_bad_head_options(heads, message):
    assert message in error_of(params(model__heads=heads))


@pytest.mark.parametrize(("sampling", "steps"), [("undersample", 0), ("sequential", 0), ("proportional", 200)])
def test_multipliers_where_they_take_effect(sampling, steps):
    data = with_train(sampling=sampling, steps_per_epoch=steps, multipliers={"sst": 3, "para": 1, "sts": 4})
    assert config_from_dict(data).train.multipliers == {"sst": 3, "para": 1, "sts": 4}


def test_good_head_options():
    cfg = config_from_dict(params(model__heads={"para": {"encoding": "bi-concat", "mlp": [64], "dropout": 0.2}}))
    assert cfg.model.heads["para"] == HeadConfig(encoding="bi-concat", mlp=(64,), dropout=0.2)


@pytest.mark.parametrize(("pals", "heads"), [(-1, 12), (100, 12)])
def test_bad_pal_sizes(pals, heads):
    message = error_of(params(model__pals=pals, model__pal_heads=heads))
    assert message.startswith("model.pals: expected 0 (no PALs) or a size >= 1 divisible by pal_heads (12)")


def test_pal_heads_must_be_positive():
    assert error_of(params(model__pals=12, model__pal_heads=0)).startswith("model.pal_heads: must be >= 1")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"dist__nproc": 0}, "dist.nproc: must be >= 1, got 0"),
        ({"dist__nnodes": 0}, "dist.nnodes: must be >= 1, got 0"),
        ({"dist__rdzv_endpoint": "node7"}, "dist.rdzv_endpoint: expected host:port, got 'node7'"),
        ({"dist__nnodes": 2}, "dist.rdzv_endpoint: 2 machines need a host:port they all reach"),
        ({"dist__nnodes": 2, "dist__rdzv_endpoint": "node7:0"}, "dist.rdzv_endpoint: 2 machines need"),
    ],
)
def test_bad_process_settings(changes, message):
    assert error_of(params(**changes)).startswith(message)


def test_several_machines_with_a_reachable_endpoint():
    cfg = config_from_dict(params(dist__nproc=4, dist__nnodes=2, dist__rdzv_endpoint="node7:29400"))
    assert cfg.dist.world_size == 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"report__bootstrap": 99}, "report.bootstrap: must be >= 100 resamples (a 95% interval needs them), got 99"),
        ({"report__bootstrap": 1.5}, "report.bootstrap: got 1.5, expected int"),
        ({"report__errors": -1}, "report.errors: must be >= 0, got -1"),
        ({"report__seed": -3}, "report.seed: must be in [0, 2**63 - 1], got -3"),
        ({"report__resamples": 5}, "unknown key report.resamples; allowed keys: bootstrap, errors, seed"),
    ],
)
def test_bad_report_settings(changes, message):
    assert error_of(params(**changes)).startswith(message)


def test_report_settings_are_read():
    cfg = config_from_dict(params(report__bootstrap=200, report__errors=0, report__seed=7))
    assert (cfg.report.bootstrap, cfg.report.errors, cfg.report.seed) == (200, 0, 7)
