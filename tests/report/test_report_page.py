"""Tests for mtbert.report.page and mtbert.report.table: the metrics table and a page that loads nothing remote."""

from __future__ import annotations

import re

import pytest
from _report_data import MEMBERS, make_tasks, recorded

from mtbert.errors import DataError
from mtbert.report import page
from mtbert.report.table import check_matches, intervals, point_values


def test_point_values_are_each_models_metric_and_the_intervals_hold_them():
    tasks = make_tasks()
    points = point_values(tasks)
    assert set(points) == {*MEMBERS, "ensemble"}
    sst = tasks[0]
    assert points["finetune-2"]["sst_acc"] == sst.spec.metric(sst.votes[1], sst.gold)
    bands = intervals(tasks, resamples=300, seed=0)
    for name, scores in points.items():
        for key, value in scores.items():
            low, high = bands[name][key]
            assert low <= value <= high, (name, key)
    assert intervals(tasks, resamples=300, seed=0) == bands  # seeded


def test_a_recorded_value_that_differs_is_named():
    tasks = make_tasks()
    stale = recorded(tasks)
    stale["ensemble"]["para_acc"] += 0.01
    with pytest.raises(
        DataError, match=r"metrics/ensemble.json: ensemble\.para_acc is [\d.]+, the dev predictions give "
    ):
        check_matches(point_values(tasks), stale, "metrics/ensemble.json")
    check_matches(point_values(tasks), recorded(tasks), "metrics/ensemble.json")


def test_metrics_table_cells_show_value_and_interval():
    table = page.metrics_table(
        {"ensemble": {"sst_acc": 0.48594}}, {"ensemble": {"sst_acc": (0.45, 0.5123)}}, ["sst_acc"]
    )
    cell = re.search(r'<td class="num" data-model="ensemble" data-metric="sst_acc">(.*?)</td>', table)
    assert cell and re.sub("<[^>]+>", "", cell[1]) == "0.4859 [0.4500, 0.5123]"


@pytest.mark.parametrize("src", ["https://cdn.example.org/x.png", "../x.png", "/tmp/x.png", "data:image/png"])
def test_figures_and_links_only_name_files_beside_the_page(src):
    with pytest.raises(ValueError, match="expected a file name beside the page"):
        page.figure(src, "x")
    with pytest.raises(ValueError, match="expected a file name beside the page"):
        page.link(src, "x")


def test_the_page_escapes_text_and_has_no_scripts():
    html = page.page("a <b>", [("s", [page.paragraph("<script>alert(1)</script>"), page.figure("a.png", "c")])])
    assert "<script" not in html and "&lt;script&gt;" in html
    assert re.findall(r'(?:src|href)="([^"]*)"', html) == ["a.png"]
