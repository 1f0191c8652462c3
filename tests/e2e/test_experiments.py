"""Slow: DVC experiments and metrics diff on the tiny pipeline, and a short real-data run of the embedded model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from dvc_project import make_project, run, tiny_params

pytestmark = pytest.mark.slow
DVC = [sys.executable, "-m", "dvc"]


def test_exp_run_is_listed_and_metrics_diff_compares_branches(tmp_path, tiny_raw_dir, tiny_model_dir):
    project = make_project(tmp_path / "p", tiny_params(tiny_raw_dir, tiny_model_dir))
    run([*DVC, "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], project)

    curve = project / "dvclive/pretrain/plots/metrics/overall.tsv"
    assert len(curve.read_text().splitlines()) == 1 + 2  # committed with the baseline: header + 2 epochs
    run([*DVC, "exp", "run", "-S", "train.epochs=1", "-n", "one-epoch"], project)
    show = json.loads(run([*DVC, "exp", "show", "--json"], project).stdout)
    names = {exp.get("name") for rev in show for exp in (rev.get("experiments") or []) for exp in exp["revs"]}
    assert "one-epoch" in names
    one_epoch = curve.read_text()
    assert len(one_epoch.splitlines()) == 1 + 1
    # Back to the baseline, then the experiment's curves come back with it: its ref carries them.
    run(["git", "checkout", "-q", "--", "."], project)
    run([*DVC, "checkout", "-q"], project)
    assert len(curve.read_text().splitlines()) == 1 + 2
    run([*DVC, "exp", "apply", "one-epoch"], project)
    assert curve.read_text() == one_epoch
    run(["git", "checkout", "-q", "--", "."], project)
    run([*DVC, "checkout", "-q"], project)
    # A second experiment, another gradient method: the comparison the design card's loop is for.
    run([*DVC, "exp", "run", "-S", "train.grad=sum", "-n", "grad-sum"], project)
    run(["git", "checkout", "-q", "--", "."], project)
    run([*DVC, "checkout", "-q"], project)

    run(["git", "checkout", "-q", "-b", "other"], project)
    params = tiny_params(tiny_raw_dir, tiny_model_dir)
    params["train"]["lr"] = 1e-2
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run([*DVC, "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "other"], project)
    diff = json.loads(run([*DVC, "metrics", "diff", "main", "other", "--all", "--json"], project).stdout)
    assert "metrics/pretrain.json" in diff and "metrics/ensemble.json" in diff
    changed = diff["metrics/pretrain.json"]["overall"]
    assert changed["old"] != changed["new"]
    plots = json.loads(run([*DVC, "plots", "diff", "main", "other", "--json"], project).stdout)
    revisions = {rev for entry in plots["data"]["pretrain dev metrics"] for rev in entry.get("revisions", [])}
    assert revisions == {"main", "other"}  # the committed curves of both branches, side by side

    # mtbert compare: a branch and an experiment against main, with the workspace on a third revision (other, then
    # a commit of its own): their predictions come from the DVC cache, not from the workspace.
    (project / "notes.txt").write_text("a third revision\n")
    run(["git", "add", "notes.txt"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "third"], project)
    mtbert = [sys.executable, "-m", "mtbert.cli", "compare"]
    revisions = ["main", "other", "one-epoch", "grad-sum"]
    out = run([*mtbert, *revisions, "--format", "json", "--resamples", "200"], project).stdout
    comparisons = json.loads(out[: out.rindex("]") + 1])
    assert [(c["a"], c["b"], c["model"]) for c in comparisons] == [
        ("main", "other", "ensemble"),
        ("main", "one-epoch", "ensemble"),
        ("main", "grad-sum", "ensemble"),
    ]
    main_metrics = json.loads(run(["git", "show", "main:metrics/ensemble.json"], project).stdout)["ensemble"]
    other_metrics = json.loads((project / "metrics/ensemble.json").read_text())["ensemble"]
    for diff in comparisons[0]["differences"]:
        assert diff["a"] == pytest.approx(main_metrics[diff["metric"]], abs=1e-6)
        assert diff["b"] == pytest.approx(other_metrics[diff["metric"]], abs=1e-6)
        assert diff["low"] <= diff["delta"] <= diff["high"]
    text = run([*mtbert, "main", "one-epoch", "--members", "--resamples", "200"], project).stdout
    assert "ensemble: one-epoch against main" in text and "finetune-2: one-epoch against main" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    first = run(["git", "rev-list", "--max-parents=0", "HEAD"], project).stdout.strip()  # "init": nothing ran yet
    refused = run([*mtbert, first, "main"], project, check=False)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: {first}: predictions/ensemble/sst-dev.csv: not found (the ensemble's dev predictions; did its "
        "pipeline run, and is it committed?)"
    ] or refused.stderr.startswith(f"error: {first}: data/prepared/sst-dev.safetensors: not found")
    unknown = run([*mtbert, "main", "no-such-rev"], project, check=False)
    assert unknown.returncode == 2 and unknown.stderr.splitlines() == [
        "error: no-such-rev: not a git revision or an experiment of this repository"
    ]


def test_unknown_gradient_method_fails_before_any_work(tmp_path, tiny_raw_dir, tiny_model_dir):
    project = make_project(tmp_path / "p", tiny_params(tiny_raw_dir, tiny_model_dir))
    result = run([*DVC, "exp", "run", "-S", "train.grad=nope"], project, check=False)
    assert result.returncode != 0
    assert "train.grad: Unknown aggregator 'nope'; valid names: " in result.stderr + result.stdout
    assert "pcgrad" in result.stderr + result.stdout
    assert not (project / "data/prepared").exists()


def test_real_data_short_run(tmp_path):
    """The whole pipeline on the real CS224N files and the embedded model, with a few steps per stage."""
    raw = ROOT.parent / "shared" / "data"
    if not raw.is_dir():
        pytest.skip("no ../shared/data beside the repository")
    params = tiny_params(raw, Path("embedded"))
    params["model"]["name"] = "embedded"
    params["model"]["max_length"] = 128
    for section in ("train", "finetune"):
        params[section].update(epochs=1, steps_per_epoch=10, batch_size=8)
    params["predict"]["batch_size"] = 256
    project = make_project(tmp_path / "p", params)
    run([*DVC, "repro"], project)
    prepare = json.loads((project / "metrics/prepare.json").read_text())
    assert prepare["skipped"]["para_train"] == 2 and prepare["rows"]["para_train"] == 14212
    metrics = json.loads((project / "metrics/ensemble.json").read_text())
    # Even a few steps keep the embedded model's zero-shot STS ability (about 0.84).
    assert metrics["ensemble"]["sts_pearson"] > 0.75
    lines = (project / "predictions/ensemble/para-test.csv").read_text().splitlines()
    assert len(lines) == 4001
