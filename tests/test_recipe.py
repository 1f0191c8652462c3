"""Tests for mtbert.stagekit: params -> the trainer each stage builds."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from transformers import AutoTokenizer

from mtbert.config import config_from_dict
from mtbert.data.prepare import prepare
from mtbert.stagekit import configured_tasks, make_trainer, new_model, task_data
from mtbert.tasks import TASKS

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_raw_dir, tiny_model_dir) -> Path:
    folder = tmp_path_factory.mktemp("prepared")
    prepare(list(TASKS.values()), tiny_raw_dir, folder, AutoTokenizer.from_pretrained(tiny_model_dir))
    return folder


def config(prepared: Path, model_dir: Path, heads: dict | None = None, **train):
    data = copy.deepcopy(PARAMS)
    data["data"]["prepared_dir"] = str(prepared)
    data["model"]["name"] = str(model_dir)
    data["model"]["heads"] = heads or data["model"]["heads"]
    data["train"].update({"steps_per_epoch": 2, "batch_size": 4, "device": "cpu", **train})
    return config_from_dict(data)


def test_single_task_training_keeps_only_that_task(prepared, tiny_model_dir):
    # The repository's params list a multiplier for every task: the tasks left out must not trip the sampler.
    cfg = config(prepared, tiny_model_dir, task_ratio={"sst": 1, "para": 0, "sts": 0}, steps_per_epoch=0)
    tasks = configured_tasks(cfg)
    trainer = make_trainer(cfg, new_model(cfg, tasks), task_data(cfg, tasks), cfg.train)
    assert list(trainer.data) == ["sst"]
    assert {task for step in trainer.sampler.epoch(0) for task, _ in step} == {"sst"}


def test_pretrain_trainer_follows_sampling_multipliers_heads_and_weights(prepared, tiny_model_dir):
    multipliers = {"sst": 3, "para": 1, "sts": 4}
    cfg = config(
        prepared,
        tiny_model_dir,
        heads={"sts": {"encoding": "cross"}},
        sampling="undersample",
        steps_per_epoch=0,
        multipliers=multipliers,
        loss_weights={"sst": 0.5},
    )
    tasks = configured_tasks(cfg)
    trainer = make_trainer(cfg, new_model(cfg, tasks), task_data(cfg, tasks), cfg.train)
    sizes = {name: len(d.train) for name, d in trainer.data.items()}
    assert trainer.sampler.steps == min(sizes[t] * multipliers[t] // 4 for t in sizes)
    assert trainer.loss_weights == {"sst": 0.5}
    assert trainer.model.specs["sts"].encoding == "cross"
