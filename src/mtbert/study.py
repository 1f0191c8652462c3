"""The gradient-method study: which runs to queue, and the table of their results (mean ± standard deviation).

Pure functions: :func:`study_runs` lists the ``dvc exp run`` arguments of every (method, seed) run and
:func:`summarise` turns the parsed output of ``dvc exp show --json`` into Markdown. ``bench/method_study.py``
runs the commands.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PREFIX = "study"
METRICS_FILE = "metrics/pretrain.json"
TASK_METRICS = ("sst_acc", "para_acc", "sts_pearson", "overall")


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


def run_name(method: Method, seed: int) -> str:
    safe = method.label.replace("(", "-").replace(")", "").replace(",", "_").replace(".", "p")
    return f"{PREFIX}-{safe}-s{seed}"


def study_runs(
    methods: list[Method],
    seeds: list[int],
    target: str = "pretrain",
    settings: list[str] | None = None,
    skip: set[str] | None = None,
) -> list[list[str]]:
    """``dvc exp run --queue`` argument lists, one per (method, seed): stage 1 only by default (``target``).

    ``settings`` are further ``-S key=value`` for every run (e.g. the raw-data folder as an absolute path: a queued
    experiment sees only files git knows, not the workspace's ``data/raw`` link); runs named in ``skip`` (finished
    experiments) are left out, so an interrupted study continues where it stopped."""
    runs = []
    extra = [arg for setting in settings or [] for arg in ("-S", setting)]
    for method in methods:
        options = "{" + ", ".join(f"{k}: {v}" for k, v in method.options.items()) + "}"
        for seed in seeds:
            if run_name(method, seed) in (skip or set()):
                continue
            runs.append(
                ["dvc", "exp", "run", "--queue", "-n", run_name(method, seed),
                 "-S", f"train.grad={method.grad}", "-S", f"train.grad_options={options}",
                 "-S", f"train.seed={seed}", *extra, *([target] if target else [])]
            )  # fmt: skip
    return runs


def finished(show: list[dict[str, Any]]) -> set[str]:
    """Names of the study's experiments in ``dvc exp show --json`` output that have stage-1 metrics."""
    return {name for name, data in experiments(show) if name.startswith(PREFIX + "-") and _pretrain_metrics(data)}


def experiments(show: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(name, data)`` of every experiment in ``dvc exp show --json`` output (DVC 3: baselines, each with
    ``experiments`` holding ``revs``)."""
    for baseline in show:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                name = rev.get("name") or exp.get("name")
                if name and rev.get("data"):
                    yield name, rev["data"]


def _pretrain_metrics(data: dict[str, Any]) -> dict[str, float] | None:
    entry = (data.get("metrics") or {}).get(METRICS_FILE) or {}
    return entry.get("data")


def summarise(show: list[dict[str, Any]], methods: list[Method], costs: dict[str, float] | None = None) -> str:
    """Markdown: per method, mean ± standard deviation over its seeds of each task metric and overall, the step cost
    against ``sum`` (``costs``: grad → ratio, from ``bench/grad_step.py``), the mean gradient cosine and conflict
    share per task pair. Methods without a finished run are listed with n = 0."""
    by_name = {name: _pretrain_metrics(data) for name, data in experiments(show)}
    pairs = sorted({k.removeprefix("grad/cos_") for m in by_name.values() if m for k in m if k.startswith("grad/cos_")})
    head = ["method", "n", *TASK_METRICS, "step cost", *[f"cos {p}" for p in pairs], *[f"conflict {p}" for p in pairs]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        runs = [
            m for name, m in by_name.items() if m and name.startswith(run_name(method, 0).rsplit("-s", 1)[0] + "-s")
        ]
        cells = [method.label, str(len(runs))]
        for key in TASK_METRICS:
            cells.append(_mean_sd([r[key] for r in runs if key in r], 4))
        cost = (costs or {}).get(method.grad)
        cells.append("—" if cost is None else f"{cost:.2f}×")
        for kind in ("cos", "conflict"):
            cells += [_mean_sd([r[f"grad/{kind}_{p}"] for r in runs if f"grad/{kind}_{p}" in r], 3) for p in pairs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _mean_sd(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"
