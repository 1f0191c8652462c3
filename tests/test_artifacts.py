"""Tests for mtbert.artifacts: the one module that knows where artifacts live and what members are called."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mtbert.artifacts import Artifacts, finetune_run, member_names


def test_member_names_follow_the_finetuning_seeds():
    assert member_names((3, 1)) == ("multitask", "finetune-3", "finetune-1")


def test_each_members_models_lie_under_one_folder_named_after_it():
    art = Artifacts(Path("root"))
    assert art.member_model("multitask", "sst") == Path("root/models/multitask")
    assert art.member_model("finetune-2", "para") == Path("root/models/finetune-2/para")
    for task in ("sst", "para", "sts"):  # predict@<member> depends on models/<member> and nothing else
        assert Path("root/models/finetune-2") in art.member_model("finetune-2", task).parents
    assert art.finetune_model("sts", 7) == art.member_model("finetune-7", "sts")


@pytest.mark.parametrize("member", ["finetune", "finetune-x", "ensemble", "multi"])
def test_an_unknown_member_is_named(member):
    with pytest.raises(ValueError, match=f"unknown member '{member}'"):
        Artifacts().member_model(member, "sst")


def test_predictions_metrics_logs_and_checkpoints():
    art = Artifacts()
    assert art.member_predictions("finetune-1", "sst", "dev") == Path("predictions/members/finetune-1/sst-dev.csv")
    assert art.ensemble_predictions("sts", "test") == Path("predictions/ensemble/sts-test.csv")
    assert art.finetune_metrics("para", 2) == Path("metrics/finetune-2/para.json")
    assert art.live(finetune_run("para", 2)) == Path("dvclive/finetune-2/para")
    assert art.checkpoints(finetune_run("para", 2)) == Path("checkpoints/finetune-2-para")
    assert art.checkpoints("pretrain") == Path("checkpoints/pretrain")


def test_the_data_folders_and_curves_of_a_run_come_from_its_params(tmp_path):
    from mtbert.config import load_config

    cfg = load_config(Path(__file__).parents[1] / "params.yaml")
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, raw_dir="/data/cs224n", prepared_dir="cache"))
    art = cfg.artifacts(Path("root"))
    assert art.raw == Path("/data/cs224n") and art.prepared == Path("root/cache")  # an absolute folder stays so
    assert art.multitask_model == Path("root/models/multitask")
    assert art.curves("pretrain") == Path("root/dvclive/pretrain/plots/metrics")
    assert art.step_curves(finetune_run("sts", 1)) == Path("root/dvclive/finetune-1/sts/plots/metrics/steps")


def test_stages_take_every_path_from_the_runs_artifacts():
    """One way in: a stage script names no folder of its own and reads no data folder from the params directly."""
    for script in sorted((Path(__file__).parents[1] / "stages").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        for pattern in (r"cfg\.data\.\w+_dir", r"Path\(\s*[\"']", r"[\"'](models|predictions|metrics|dvclive)/"):
            assert not re.search(pattern, text), f"{script.name}: {pattern} (take the path from cfg.artifacts())"
