"""Tests for mtbert.report.build: the whole page from synthetic inputs (every figure a PNG beside it)."""

from __future__ import annotations

import csv
import dataclasses
import re

import numpy as np
import pytest
from _report_data import curves, make_tasks, recorded

from mtbert.errors import DataError
from mtbert.report.build import ReportInputs, write_report
from mtbert.report.page import format_value

PNG = b"\x89PNG\r\n\x1a\n"


def _inputs(grad: bool = True) -> ReportInputs:
    tasks = make_tasks()
    names = [t.spec.name for t in tasks]
    pretrain = curves([*(f"loss_{n}" for n in names), "sst_acc", "para_acc", "sts_pearson", "overall"])
    pairs = ["sst_para", "sst_sts", "para_sts"]
    stats = curves([f"cos_{p}" for p in pairs] + [f"conflict_{p}" for p in pairs] + ["corrections_sst_para"])
    finetune = {
        n: {f"finetune-{s}": curves([f"loss_{n}", f"{t.spec.name}_{t.spec.metric_name}"]) for s in (1, 2)}
        for n, t in zip(names, tasks, strict=True)
    }
    return ReportInputs(tasks, recorded(tasks), "metrics/ensemble.json", pretrain, stats if grad else {}, finetune)


def test_the_page_shows_every_figure_as_a_png_beside_it(tmp_path):
    inputs = _inputs()
    index = write_report(tmp_path / "reports", inputs, errors=4, resamples=200, seed=0)
    html = index.read_text()
    sources = re.findall(r'<img src="([^"]+)"', html)
    expected = {"curves-pretrain.png", "gradients.png", "pairs.png"}
    expected |= {f"curves-finetune-{t}.png" for t in ("sst", "para", "sts")}
    expected |= {f"predictions-{t}.png" for t in ("sst", "para", "sts")}
    assert set(sources) == expected
    for src in sources:
        assert (index.parent / src).read_bytes().startswith(PNG)
    assert not re.search(r"(?:src|href)=\"(?!errors-\w+\.csv|[\w-]+\.png)", html)  # nothing but files beside it
    for name, scores in inputs.recorded.items():
        for key, value in scores.items():
            assert f'data-model="{name}" data-metric="{key}"><span class="value">{format_value(value)}<' in html


@pytest.mark.parametrize("errors", [1, 3, 7])
def test_error_tables_are_written_as_csv_with_as_many_rows_as_asked(tmp_path, errors):
    inputs = _inputs()
    write_report(tmp_path, inputs, errors=errors, resamples=200, seed=0)
    for task in inputs.tasks:
        with (tmp_path / f"errors-{task.spec.name}.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        wrong = len(task.gold) if task.probabilities is None else int((task.ensemble != task.gold).sum())
        assert len(rows) == min(errors, wrong) and wrong >= 5  # 1 and 3: as asked; 7: every wrong row of para
        assert {"gold", "predicted", "finetune-1", "finetune-3"} <= set(rows[0])


def test_a_method_without_gradient_statistics_says_so(tmp_path):
    html = write_report(tmp_path, _inputs(grad=False), errors=1, resamples=200, seed=0).read_text()
    assert "logged no gradient statistics" in html and "gradients.png" not in html


def test_stale_metrics_stop_the_report(tmp_path):
    inputs = _inputs()
    inputs.recorded["finetune-1"]["sts_pearson"] = 0.5
    with pytest.raises(DataError, match=r"finetune-1\.sts_pearson is 0\.5, "):
        write_report(tmp_path, inputs, errors=1, resamples=200, seed=0)


def test_statistics_with_underscores_in_their_names_are_grouped_by_name():
    """GradVac's group_weights_<task> and targets_mean_<a>_<b>: the label is the task (pair) at the end."""
    from mtbert.report.build import split_statistic

    tasks = ["sst", "para", "sts"]
    assert split_statistic("group_weights_sst", tasks) == ("group_weights", "sst")
    assert split_statistic("targets_mean_para_sts", tasks) == ("targets_mean", "para_sts")
    assert split_statistic("cos_sst_para", tasks) == ("cos", "sst_para")
    assert split_statistic("scale", tasks) == ("scale", "value")


def test_per_step_curves_are_drawn_where_the_runs_logged_them(tmp_path, monkeypatch):
    """With steps (every log_every steps), the gradient panels come from them (the caption says every how many
    steps) and the loss curves too; the heatmaps keep the per-epoch means."""
    from mtbert.report import figures
    from mtbert.report.sources import Curve

    drawn = {}
    real = figures.training_curves
    monkeypatch.setattr(
        figures,
        "training_curves",
        lambda loss, m, t, p: (drawn.setdefault(t, (loss, m)) and None) or real(loss, m, t, p),
    )
    inputs = _inputs()
    steps = np.arange(20, 220, 20, dtype=float)
    per_step = {"loss_sst": Curve(steps, np.linspace(2, 1, 10)), "lr": Curve(steps, np.linspace(1, 0, 10))}
    per_step |= {f"grad/cos_{p}": Curve(steps, np.zeros(10)) for p in ("sst_para", "sst_sts", "para_sts")}
    per_step["dev/sst_acc"] = Curve(steps[:2], np.array([0.3, 0.4]))
    inputs = dataclasses.replace(
        inputs, steps={"pretrain": per_step, "finetune-1/sst": {"loss_sst": per_step["loss_sst"]}}
    )
    html = write_report(tmp_path, inputs, errors=1, resamples=200, seed=0).read_text()
    assert "Every 20 steps, means over them" in html
    losses, metrics = drawn["pretraining"]
    assert len(losses["sst"].steps) == 10  # per step, not per epoch
    assert "sst_acc (within epochs)" in metrics
    assert len(drawn["fine-tuning sst"][0]["finetune-1"].steps) == 10
