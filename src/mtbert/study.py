"""The gradient-method study: which runs to queue, what they measured, and the tables of their results.

Pure functions: :func:`study_runs` lists the ``dvc exp run`` arguments of every (method, seed) run,
:func:`collect` reads the runs' params and metrics out of the parsed ``dvc exp show --json`` (a flat record that
can be kept in git and merged with later runs: experiment refs do not travel with a clone), and :func:`summarise`
/ :func:`summarise_pipelines` turn a record into Markdown. ``bench/method_study.py`` runs the commands.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mtbert.tasks import KINDS, TaskSpec

STAGE1_PREFIX = "study"  # stage 1 only (`pretrain`)
PIPELINE_PREFIX = "pipeline"  # the whole pipeline: two stages and the ensemble
PRETRAIN_METRICS = "metrics/pretrain.json"
ENSEMBLE_METRICS = "metrics/ensemble.json"


@dataclass(frozen=True)
class Method:
    """A study arm: a label, the ``train.grad`` it sets and its ``train.grad_options``."""

    label: str
    grad: str
    options: dict[str, Any]

    @classmethod
    def parse(cls, text: str) -> Method:
        """``name`` or ``weighted:1,0.5,2`` (fixed loss weights, one per task)."""
        name, _, weights = text.partition(":")
        if name == "weighted":
            if not weights:
                raise ValueError(f"method {text!r}: weighted needs its weights, e.g. weighted:1,0.5,2")
            values = [float(w) for w in weights.split(",")]
            return cls(f"weighted({weights})", "weighted", {"weights": values})
        if weights:
            raise ValueError(f"method {text!r}: only weighted takes values after ':'")
        return cls(name, name, {})


def parse_methods(text: str) -> list[Method]:
    """``sum,weighted:1,2,1,weighted:2,1,1,famo``: a comma before a letter starts the next method, so the numbers
    after ``weighted:`` stay with it."""
    return [Method.parse(part) for part in re.split(r",(?=[A-Za-z])", text.strip(",")) if part]


def run_name(method: Method, seed: int, prefix: str = STAGE1_PREFIX) -> str:
    safe = method.label.replace("(", "-").replace(")", "").replace(",", "_").replace(".", "p")
    return f"{prefix}-{safe}-s{seed}"


def prefix_for(target: str) -> str:
    """Stage-1 runs and whole-pipeline runs get different names, so that one table never mixes them."""
    return PIPELINE_PREFIX if not target else STAGE1_PREFIX


def study_runs(
    methods: list[Method],
    seeds: list[int],
    target: str = "pretrain",
    settings: list[str] | None = None,
    skip: set[str] | None = None,
) -> list[list[str]]:
    """``dvc exp run --queue`` argument lists, one per (method, seed): stage 1 only by default (``target``; ``''``
    for the whole pipeline, named ``pipeline-…``).

    ``train.grad_options`` is first emptied and then given each option with a ``++key=value`` override (a filled
    mapping cannot replace the empty one of ``params.yaml``: Hydra refuses the new keys). ``settings`` are further
    ``-S key=value`` for every run (e.g. the raw-data folder as an absolute path: a queued experiment sees only
    files git knows, not the workspace's ``data/raw`` link); runs named in ``skip`` (finished experiments) are left
    out, so an interrupted study continues where it stopped."""
    runs = []
    extra = [arg for setting in settings or [] for arg in ("-S", setting)]
    for method in methods:
        options = ["-S", "train.grad_options={}"]
        for key, value in method.options.items():
            options += ["-S", f"++train.grad_options.{key}={_hydra_value(value)}"]
        for seed in seeds:
            name = run_name(method, seed, prefix_for(target))
            if name in (skip or set()):
                continue
            runs.append(
                ["dvc", "exp", "run", "--queue", "-n", name, "-S", f"train.grad={method.grad}", *options,
                 "-S", f"train.seed={seed}", *extra, *([target] if target else [])]
            )  # fmt: skip
    return runs


def _hydra_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def collect(show: list[dict[str, Any]], completed: set[str]) -> dict[str, dict[str, Any]]:
    """The study's runs in ``dvc exp show --json`` output that are in ``completed`` (the names of ``dvc exp list``:
    a queued or running experiment is listed by ``exp show`` too, with the metrics of its unfinished workspace or
    of its baseline commit): name → ``{"commit", "grad", "grad_options", "seed", "pretrain", "ensemble"}``. Only
    what the run made is kept: stage 1's metrics for ``study-…``, also the ensemble's for ``pipeline-…``."""
    runs = {}
    for commit, name, data in _experiments(show):
        kind = name.split("-", 1)[0]
        if kind not in (STAGE1_PREFIX, PIPELINE_PREFIX) or name not in completed:
            continue
        train = (((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}).get("train") or {}
        metrics = data.get("metrics") or {}
        runs[name] = {
            "commit": commit,
            "grad": train.get("grad"),
            "grad_options": train.get("grad_options"),
            "seed": train.get("seed"),
            "pretrain": (metrics.get(PRETRAIN_METRICS) or {}).get("data"),
            "ensemble": (metrics.get(ENSEMBLE_METRICS) or {}).get("data") if kind == PIPELINE_PREFIX else None,
        }
    return runs


def finished(runs: dict[str, dict[str, Any]]) -> set[str]:
    """Names of the runs that have their metrics: stage 1's for ``study-…``, the ensemble's for ``pipeline-…``."""
    key = {STAGE1_PREFIX: "pretrain", PIPELINE_PREFIX: "ensemble"}
    return {name for name, run in runs.items() if run.get(key[name.split("-", 1)[0]])}


def _experiments(show: list[dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(baseline commit, name, data)`` of every experiment in ``dvc exp show --json`` output (DVC 3: baselines,
    each with ``experiments`` holding ``revs``)."""
    for baseline in show:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                name = rev.get("name") or exp.get("name")
                if name and rev.get("data"):
                    yield baseline.get("rev", ""), name, rev["data"]


def _runs_of(runs: dict[str, dict[str, Any]], method: Method, prefix: str, key: str) -> list[dict[str, float]]:
    """The method's runs by name, ``<stem>-s<seed>`` exactly: a run kept in the record as ``<name>@<commit>`` (one
    superseded by a rerun of changed code) is not among them."""
    stem = re.escape(run_name(method, 0, prefix).rsplit("-s", 1)[0] + "-s")
    return [run[key] for name, run in sorted(runs.items()) if re.fullmatch(rf"{stem}\d+", name) and run.get(key)]


def metric_keys(metrics: list[dict[str, Any]], tasks: list[TaskSpec] | None = None) -> list[str]:
    """The tables' metric columns: each task's key (``sst_acc``), then ``overall``. In the order of ``tasks`` when
    given; otherwise every key of ``metrics`` named ``<task>_<metric>`` for a kind's metric (not ``loss_<task>``,
    nor the ``grad/…`` statistics), in the order first seen."""
    if tasks is not None:
        return [f"{t.name}_{t.metric_name}" for t in tasks] + ["overall"]
    names = {kind.metric_name for kind in KINDS.values()}
    keys = (k for m in metrics for k in m if "/" not in k and "_" in k and k.rsplit("_", 1)[1] in names)
    return [*dict.fromkeys(keys), "overall"]


def summarise(
    runs: dict[str, dict[str, Any]],
    methods: list[Method],
    costs: dict[str, float] | None = None,
    tasks: list[TaskSpec] | None = None,
) -> str:
    """Markdown: per method, mean ± standard deviation over its seeds of each stage-1 task metric and overall
    (:func:`metric_keys`), the step cost against ``sum`` (``costs``: grad → ratio, from ``bench/grad_step.py``), the
    mean gradient cosine and conflict share per task pair. Methods without a finished run are listed with n = 0."""
    found = [run["pretrain"] for run in runs.values() if run.get("pretrain")]
    columns = metric_keys(found, tasks)
    pairs = sorted({k.removeprefix("grad/cos_") for m in found for k in m if k.startswith("grad/cos_")})
    head = ["method", "n", *columns, "step cost", *[f"cos {p}" for p in pairs], *[f"conflict {p}" for p in pairs]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        done = _runs_of(runs, method, STAGE1_PREFIX, "pretrain")
        cells = [method.label, str(len(done))]
        cells += [_mean_sd([r[key] for r in done if key in r], 4) for key in columns]
        cost = (costs or {}).get(method.grad)
        cells.append("—" if cost is None else f"{cost:.2f}×")
        for kind in ("cos", "conflict"):
            cells += [_mean_sd([r[f"grad/{kind}_{p}"] for r in done if f"grad/{kind}_{p}" in r], 3) for p in pairs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summarise_pipelines(
    runs: dict[str, dict[str, Any]], methods: list[Method], tasks: list[TaskSpec] | None = None
) -> str:
    """Markdown: per method, the whole pipeline's dev metrics — stage 1, the best fine-tuned member and the
    ensemble's per task (:func:`metric_keys`) — as mean ± standard deviation over the seeds that ran; methods without
    such a run are left out, and the result is empty when none of ``methods`` has one."""
    found = [run["ensemble"]["ensemble"] for run in runs.values() if (run.get("ensemble") or {}).get("ensemble")]
    columns = metric_keys(found, tasks)
    head = ["method", "n", "stage 1 overall", "best member overall", *[f"ensemble {k}" for k in columns]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        stage1 = _runs_of(runs, method, PIPELINE_PREFIX, "pretrain")
        ensembles = _runs_of(runs, method, PIPELINE_PREFIX, "ensemble")
        if not stage1 and not ensembles:
            continue  # never run as a whole pipeline
        best = [max(v["overall"] for k, v in e.items() if k != "ensemble") for e in ensembles if len(e) > 1]
        cells = [method.label, str(len(ensembles)), _mean_sd([r["overall"] for r in stage1], 4), _mean_sd(best, 4)]
        cells += [_mean_sd([e["ensemble"][key] for e in ensembles if key in e["ensemble"]], 4) for key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def _mean_sd(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
