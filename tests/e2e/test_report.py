"""End to end: the report stage of the tiny pipeline (``dvc repro``), rendered in headless Chromium.

The page must load every image, request nothing outside ``reports/`` and show the numbers of
``metrics/ensemble.json``. The screenshot is kept in ``test-artifacts/report.png`` (ignored by git).
Skipped only when Debian's ``chromium`` or the ``playwright`` package is missing (``.ci/run`` installs chromium).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT

from mtbert.report.page import format_value

ARTIFACT = ROOT / "test-artifacts" / "report.png"


@pytest.fixture(scope="module")
def rendered(request) -> dict:
    """The report page of the tiny pipeline opened in Chromium: requests, image widths, metrics cells. Skips before
    building the pipeline when there is no browser to open it in."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; make test installs it as root)")
    project, _ = request.getfixturevalue("tiny_pipeline")
    index = project / "reports" / "index.html"
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(index.as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])")
        cells = page.evaluate(
            "Array.from(document.querySelectorAll('#metrics td')).map("
            "td => [td.dataset.model, td.dataset.metric, td.querySelector('.value').textContent])"
        )
        ARTIFACT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACT), full_page=True)
        browser.close()
    print(f"screenshot of the tiny pipeline's report: {ARTIFACT}")
    return {"project": project, "requests": requests, "images": images, "cells": cells}


def test_every_image_loaded(rendered):
    assert len(rendered["images"]) >= 8  # curves, gradients, pairs, one prediction figure per task
    broken = [src for src, width in rendered["images"] if width == 0]
    assert not broken, f"images that did not load: {broken}"


def test_the_page_requests_nothing_outside_the_report_folder(rendered):
    folder = (rendered["project"] / "reports").as_uri() + "/"
    assert rendered["requests"], "no request recorded"
    outside = [url for url in rendered["requests"] if not url.startswith(folder)]
    assert not outside, f"requests outside {folder}: {outside}"


def test_the_metrics_table_shows_the_ensemble_stages_numbers(rendered):
    metrics = json.loads((rendered["project"] / "metrics/ensemble.json").read_text())
    shown = {(model, key): text for model, key, text in rendered["cells"]}
    expected = {(model, key): format_value(v) for model, scores in metrics.items() for key, v in scores.items()}
    assert shown == expected


def test_error_tables_are_written_per_task(tiny_pipeline):
    """report.errors rows per task (10, the default): the tiny dev sets have more wrong predictions than that."""
    project, _ = tiny_pipeline
    for task in ("sst", "para", "sts"):
        with (project / f"reports/errors-{task}.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 10
        assert {"id", "gold", "predicted", "multitask", "finetune-1", "finetune-2"} <= set(rows[0])


def test_screenshot_is_kept(rendered):
    assert ARTIFACT.is_file() and ARTIFACT.stat().st_size > 10_000
    assert Path(ARTIFACT).read_bytes().startswith(b"\x89PNG")
