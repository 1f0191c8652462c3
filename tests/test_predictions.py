"""Tests for mtbert.predictions: every row predicted, in input order, at any batch size; a missing value is an error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from mtbert.errors import DataError
from mtbert.model import build_model
from mtbert.predictions import evaluate, predict_split
from mtbert.prepare import load_training_data
from mtbert.tasks import TaskSpec


@pytest.fixture(scope="module")
def setup(prepared, tiny_model_dir):
    cfg = tiny_config(prepared, tiny_model_dir)
    data = load_training_data(prepared, cfg.task_specs(), cfg.model.max_length)
    return build_model(cfg.model, cfg.task_specs(), seed=0).eval(), data


@pytest.mark.parametrize("task", ["sst", "para", "sts"])
def test_every_row_is_predicted_the_same_at_any_batch_size(setup, task):
    model, data = setup
    d, cpu = data.tasks[task], torch.device("cpu")
    one = predict_split(model, d.spec, d.dev, data.special, data.max_length, cpu, 1, "fp32")
    many = predict_split(model, d.spec, d.dev, data.special, data.max_length, cpu, 7, "fp32")
    assert len(one.values) == len(d.dev) and np.isfinite(one.values).all()
    np.testing.assert_allclose(one.values, many.values, rtol=1e-5, atol=1e-6)  # order restored after length sorting
    if d.spec.classes:  # class probabilities in the same order, summing to 1, their argmax the prediction
        np.testing.assert_allclose(one.probabilities, many.probabilities, rtol=1e-5, atol=1e-6)
        assert one.probabilities.shape == (len(d.dev), d.spec.classes)
        np.testing.assert_allclose(one.probabilities.sum(1), 1.0, atol=1e-6)
        assert (one.probabilities.argmax(1) == one.values).all()
    else:
        assert one.probabilities is None


def test_a_row_without_a_finite_prediction_is_an_error_not_a_value(setup, monkeypatch):
    model, data = setup
    d = data.tasks["sts"]
    monkeypatch.setattr(TaskSpec, "decode", lambda self, out: torch.full_like(out, float("nan")))
    with pytest.raises(DataError, match="sts: no finite prediction for 30 rows"):
        predict_split(model, d.spec, d.dev, data.special, data.max_length, torch.device("cpu"), 8, "fp32")


def test_evaluate_scores_each_task_and_the_overall_mean(setup):
    model, data = setup
    metrics = evaluate(model, data, torch.device("cpu"), 16, "fp32")
    assert set(metrics) == {"sst_acc", "para_acc", "sts_pearson", "overall"}
    expected = (metrics["sst_acc"] + metrics["para_acc"] + (1 + metrics["sts_pearson"]) / 2) / 3
    assert metrics["overall"] == pytest.approx(expected)
