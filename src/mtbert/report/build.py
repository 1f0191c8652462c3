"""Writing the report: every figure, the error tables (CSV) and ``index.html`` into one folder.

Which figure a task gets follows from its kind, not its name: a confusion matrix for more than two classes, accuracy
against the decision threshold for two, predicted against gold for a score.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtbert.aggregators import statistic_docs
from mtbert.files import write_text_atomic
from mtbert.report import figures
from mtbert.report import page as html
from mtbert.report.mistakes import error_columns, error_rows, write_rows
from mtbert.report.sources import Curve, TaskDev
from mtbert.report.stats import confusion_matrix, threshold_curve
from mtbert.report.table import ENSEMBLE, OVERALL, check_matches, intervals, metric_key, point_values

INDEX = "index.html"
THRESHOLDS = np.linspace(0, 1, 101)
FIRST_STATS = ("cos", "conflict")  # shown first, and as pair heatmaps; other statistics follow as lines
GRADIENT_STATISTICS = {
    "cos": "the cosine of the two task gradients",
    "conflict": "the share of steps in which they conflict (cosine < 0)",
}


@dataclass(frozen=True)
class ReportInputs:
    """What the page shows.

    Parameters:
        tasks: each task's dev examples and predictions.
        recorded: the metrics file of the ensemble stage (per member and ``ensemble``, per key).
        recorded_name: its path, named in errors.
        pretrain: the pretraining run's per-epoch curves by name (``loss_<task>``, ``<task>_<metric>``, ``overall``),
            at the step each epoch ends.
        grad: its per-epoch gradient statistics by name (``cos_<a>_<b>``, ``conflict_<a>_<b>``, …).
        finetune: per task, per fine-tuning run (e.g. ``finetune-1``), that run's per-epoch curves by name.
        steps: the per-step curves (every ``log_every`` steps) of each run by its dvclive name (``pretrain``,
            ``finetune-1/sst``): ``loss_<task>``, ``lr``, ``grad/…`` and, with ``eval_every``, ``dev/…``.
    """

    tasks: list[TaskDev]
    recorded: dict[str, dict[str, float]]
    recorded_name: str
    pretrain: dict[str, Curve]
    grad: dict[str, Curve]
    finetune: dict[str, dict[str, dict[str, Curve]]]
    steps: dict[str, dict[str, Curve]] = field(default_factory=dict)


def write_report(out: Path, inputs: ReportInputs, errors: int, resamples: int, seed: int) -> Path:
    """Write ``out/index.html`` with its PNGs and ``errors-<task>.csv`` files; return the page's path. The point
    values must equal ``inputs.recorded`` (else the predictions and the metrics are from different runs)."""
    out.mkdir(parents=True, exist_ok=True)
    sections = [
        ("Dev metrics", _metrics(inputs, resamples, seed)),
        ("Training curves", _curves(out, inputs)),
        ("Gradients of the task pairs (pretraining)", _gradients(out, inputs)),
        ("Dev predictions", _predictions(out, inputs)),
        ("Most confidently wrong dev examples", _errors(out, inputs, errors)),
    ]
    path = out / INDEX
    write_text_atomic(path, html.page("mtbert: report of the run", sections))
    return path


def _metrics(inputs: ReportInputs, resamples: int, seed: int) -> list[str]:
    points = point_values(inputs.tasks)
    check_matches(points, inputs.recorded, inputs.recorded_name)
    points = {name: inputs.recorded[name] for name in points}  # the file's values, shown as recorded
    keys = [metric_key(t) for t in inputs.tasks] + [OVERALL]
    note = (
        f"Dev set; in brackets the 95% percentile bootstrap interval over the dev examples ({resamples} resamples, "
        f"seed {seed}; members and the ensemble on the same resamples). overall: the mean of the normalised metrics."
    )
    return [html.metrics_table(points, intervals(inputs.tasks, resamples, seed), keys), html.paragraph(note)]


def _curves(out: Path, inputs: ReportInputs) -> list[str]:
    """Per run: the training loss (per step where logged, else per epoch) and the dev metric (each epoch's end, and
    within epochs with ``eval_every``), against the training step."""
    names = [t.spec.name for t in inputs.tasks]
    keys = [metric_key(t) for t in inputs.tasks]
    parts = []
    if inputs.pretrain:
        steps = inputs.steps.get("pretrain", {})
        losses = {n: steps.get(f"loss_{n}", inputs.pretrain.get(f"loss_{n}")) for n in names}
        metrics = {k: inputs.pretrain[k] for k in [*keys, OVERALL] if k in inputs.pretrain}
        metrics |= {f"{k} (within epochs)": steps[f"dev/{k}"] for k in keys if f"dev/{k}" in steps}
        figures.training_curves(
            {k: v for k, v in losses.items() if v}, metrics, "pretraining", out / "curves-pretrain.png"
        )
        parts.append(html.figure("curves-pretrain.png", "Pretraining: training loss and dev metric per task, by step"))
    for task in inputs.tasks:
        runs = inputs.finetune.get(task.spec.name, {})
        if not runs:
            continue
        name, key = task.spec.name, metric_key(task)
        losses, metrics = {}, {}
        for run, curves in runs.items():
            steps = inputs.steps.get(f"{run}/{name}", {})
            if (loss := steps.get(f"loss_{name}", curves.get(f"loss_{name}"))) is not None:
                losses[run] = loss
            if key in curves:
                metrics[run] = curves[key]
            if f"dev/{key}" in steps:
                metrics[f"{run} (within epochs)"] = steps[f"dev/{key}"]
        file = f"curves-finetune-{name}.png"
        figures.training_curves(losses, metrics, f"fine-tuning {name}", out / file)
        parts.append(html.figure(file, f"Fine-tuning {name}: training loss and dev {key} per run, by step"))
    return parts or [html.paragraph("No training curves were found.")]


def _every(curves: dict[str, Curve]) -> int:
    steps = next(iter(curves.values())).steps
    return int(steps[1] - steps[0]) if len(steps) > 1 else int(steps[0])


def split_statistic(name: str, tasks: list[str]) -> tuple[str, str]:
    """``grad/<stat>_<a>_<b>``, ``<stat>_<task>`` or ``<stat>`` → ``(stat, label)``: the label is the task pair or
    the task the name ends with (a statistic's own name may hold underscores: ``group_weights_sst``)."""
    for a in tasks:
        for b in tasks:
            if a != b and name.endswith(f"_{a}_{b}"):
                return name[: -len(a) - len(b) - 2], f"{a}_{b}"
    for task in tasks:
        if name.endswith(f"_{task}"):
            return name[: -len(task) - 1], task
    return name, "value"


def _gradients(out: Path, inputs: ReportInputs) -> list[str]:
    groups: dict[str, dict[str, Curve]] = {}
    tasks = [t.spec.name for t in inputs.tasks]
    per_step = {
        k.removeprefix("grad/"): c for k, c in inputs.steps.get("pretrain", {}).items() if k.startswith("grad/")
    }
    for name, curve in sorted((per_step or inputs.grad).items()):
        stat, label = split_statistic(name, tasks)
        groups.setdefault(stat, {})[label] = curve
    if not groups:
        return [html.paragraph("The gradient method logged no gradient statistics.")]
    ordered = {s: groups[s] for s in FIRST_STATS if s in groups} | groups
    figures.gradient_lines(ordered, out / "gradients.png")
    meanings = {**GRADIENT_STATISTICS, **statistic_docs()}
    described = "; ".join(f"{s}: {meanings[s]}" if s in meanings else s for s in ordered)
    when = f"Every {_every(per_step)} steps, means over them" if per_step else "Per epoch, means over its steps"
    parts = [html.figure("gradients.png", f"{when} (per task pair a_b, or per task) of {described}")]
    epochs = {}
    for name, curve in inputs.grad.items():  # the heatmaps: means over the epochs' means, every step weighed alike
        stat, label = split_statistic(name, tasks)
        epochs.setdefault(stat, {})[label] = curve
    means = {s: {p: float(np.mean(c.values)) for p, c in epochs[s].items()} for s in FIRST_STATS if s in epochs}
    if means:
        figures.pair_heatmaps(tasks, {s: figures.pair_matrix(tasks, v) for s, v in means.items()}, out / "pairs.png")
        parts.append(html.figure("pairs.png", "Mean over the epochs of " + " and ".join(means) + " per task pair"))
    return parts


def _predictions(out: Path, inputs: ReportInputs) -> list[str]:
    parts = []
    for task in inputs.tasks:
        name, key = task.spec.name, metric_key(task)
        file = f"predictions-{name}.png"
        if task.probabilities is None:
            figures.scatter(task.ensemble, task.gold, f"{name}: ensemble", out / file)
            parts.append(html.figure(file, f"{name} dev: the ensemble's predicted score against gold"))
        elif task.spec.classes == 2:
            accuracies = {
                m: threshold_curve(task.probabilities[k, :, 1], task.gold, THRESHOLDS)
                for k, m in enumerate(task.members)
            }
            accuracies[f"{ENSEMBLE} (mean p(1))"] = threshold_curve(
                task.probabilities[:, :, 1].mean(axis=0), task.gold, THRESHOLDS
            )
            figures.threshold(THRESHOLDS, accuracies, f"{name}: accuracy against the threshold", out / file)
            parts.append(html.figure(file, f"{name} dev: accuracy when predicting 1 above a threshold on p(1)"))
        else:
            best = max(task.members, key=lambda m: inputs.recorded[m][key])
            chosen = {f"best member: {best}": task.votes[task.members.index(best)], ENSEMBLE: task.ensemble}
            matrices = {t: confusion_matrix(p, task.gold, task.spec.classes) for t, p in chosen.items()}
            figures.confusion(matrices, out / file)
            parts.append(html.figure(file, f"{name} dev confusion matrices (rows gold, columns predicted)"))
    return parts


def _errors(out: Path, inputs: ReportInputs, n: int) -> list[str]:
    parts = []
    for task in inputs.tasks:
        columns, rows = error_columns(task), error_rows(task, n)
        file = f"errors-{task.spec.name}.csv"
        write_rows(out / file, rows, columns)
        parts += [f"<h3>{task.spec.name}</h3>", html.rows_table(columns, rows), html.link(file, f"{file} (CSV)")]
    how = (
        "Wrong predictions of the ensemble, most confident first (confidence: the members' mean probability of the "
        "predicted class; for scores, the largest absolute errors). The last columns are each member's vote."
    )
    return [html.paragraph(how), *parts]
