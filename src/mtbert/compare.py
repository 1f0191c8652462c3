"""Is the difference real? Paired comparisons of runs on the same dev examples.

Two runs' predictions of one dev set are compared on the *same* bootstrap resamples of its examples, so the
interval is that of the difference itself, not of two independent scores (which would overlap far more often):
``delta = metric(b) - metric(a)``, its 95% percentile interval, and a paired test — McNemar's exact test for an
accuracy (the binomial test on the examples only one of the two gets right), the bootstrap's two-sided p for a
correlation. Overall combines each task's normalised metric per resample, as the point value does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest

from mtbert.report.stats import bootstrap_indices, percentile_interval

Metric = Callable[[np.ndarray, np.ndarray], float]
OVERALL = "overall"


@dataclass(frozen=True)
class Difference:
    """``b`` against the reference ``a`` on one metric."""

    metric: str
    a: float
    b: float
    delta: float
    low: float
    high: float
    p: float
    test: str  # "mcnemar" or "bootstrap"

    @property
    def real(self) -> bool:
        """The 95% interval of the difference excludes 0."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict:
        return {**asdict(self), "real": self.real}


def mcnemar_p(right_a: np.ndarray, right_b: np.ndarray) -> float:
    """McNemar's exact test: of the examples exactly one of the two gets right, is either side more often right
    than chance (a fair coin)? Two-sided; 1 when there is no such example."""
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_b, only_a + only_b, 0.5).pvalue)


def bootstrap_p(samples: np.ndarray) -> float:
    """Two-sided p of "the difference is 0" from its bootstrap distribution: twice the smaller share of resamples on
    either side of 0 (at least 1 / (resamples + 1))."""
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return float("nan")
    share = min(np.mean(finite <= 0), np.mean(finite >= 0))
    return float(min(1.0, max(2 * share, 1 / (len(finite) + 1))))


@dataclass(frozen=True)
class PairedTask:
    """One task's dev gold labels and the two runs' predictions of it, row-aligned; ``accuracy``: its metric is
    the share of exact matches (McNemar applies), else a correlation or any other metric (bootstrap p)."""

    name: str
    metric_name: str
    metric: Metric
    normalise: Callable[[float], float]
    gold: np.ndarray
    a: np.ndarray
    b: np.ndarray
    accuracy: bool


def compare_tasks(tasks: list[PairedTask], resamples: int, seed: int) -> list[Difference]:
    """One :class:`Difference` per task, then ``overall`` (the mean of the normalised metrics), all on the same
    resamples: task ``t`` draws its rows with seed ``(seed, t)``, the same rows for both runs."""
    out, overall_a, overall_b, normalised = [], [], [], []
    for t, task in enumerate(tasks):
        rows = bootstrap_indices(len(task.gold), resamples, (seed, t))
        with np.errstate(all="ignore"):
            sa = np.asarray([task.metric(task.a[r], task.gold[r]) for r in rows], dtype=float)
            sb = np.asarray([task.metric(task.b[r], task.gold[r]) for r in rows], dtype=float)
        a, b = task.metric(task.a, task.gold), task.metric(task.b, task.gold)
        low, high = percentile_interval(sb - sa)
        if task.accuracy:
            p, test = mcnemar_p(task.a == task.gold, task.b == task.gold), "mcnemar"
        else:
            p, test = bootstrap_p(sb - sa), "bootstrap"
        out.append(Difference(f"{task.name}_{task.metric_name}", a, b, b - a, low, high, p, test))
        norm = np.vectorize(task.normalise)
        overall_a.append(task.normalise(a))
        overall_b.append(task.normalise(b))
        normalised.append(norm(sb) - norm(sa))
    diff = np.mean(normalised, axis=0)
    a, b = float(np.mean(overall_a)), float(np.mean(overall_b))
    low, high = percentile_interval(diff)
    out.append(Difference(OVERALL, a, b, b - a, low, high, bootstrap_p(diff), "bootstrap"))
    return out


@dataclass(frozen=True)
class Comparison:
    """``b`` against the reference ``a`` for one model (``ensemble`` or a member)."""

    a: str
    b: str
    model: str
    differences: list[Difference]


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def format_comparisons(comparisons: list[Comparison], fmt: str) -> str:
    """``text`` (80 columns), ``markdown`` or ``json``; a difference whose interval excludes 0 is marked ``*``."""
    if fmt == "json":
        import json

        rows = [
            {"a": c.a, "b": c.b, "model": c.model, "differences": [d.as_dict() for d in c.differences]}
            for c in comparisons
        ]
        return json.dumps(rows, indent=2)
    out = []
    for c in comparisons:
        title = f"{c.model}: {c.b} against {c.a}"
        head = ["metric", c.a[:10], c.b[:10], "delta", "95% interval", "p", ""]
        rows = [
            [
                d.metric,
                f"{d.a:.4f}",
                f"{d.b:.4f}",
                _signed(d.delta),
                f"[{_signed(d.low)}, {_signed(d.high)}]",
                f"{d.p:.3g} ({d.test})",
                "*" if d.real else "",
            ]
            for d in c.differences
        ]
        if fmt == "markdown":
            out += [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            out += ["| " + " | ".join(r) + " |" for r in rows] + [""]
        else:
            widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
            out.append(title)
            out += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
            out.append("")
    out.append("* the paired 95% interval of the difference excludes 0 (McNemar's exact test for accuracies, the")
    out.append("  paired bootstrap for Pearson's r and overall; the same resampled dev examples for both runs)")
    return "\n".join(out)


def comparison_page(comparisons: list[Comparison]) -> str:
    """The comparisons as one offline page in the report's style (no script, no network)."""
    from html import escape

    from mtbert.report import page as html

    sections = []
    for c in comparisons:
        head = "".join(f"<th>{escape(h)}</th>" for h in ("metric", c.a, c.b, "delta", "95% interval", "p", ""))
        rows = "".join(
            f'<tr{" class=ensemble" if d.real else ""}><th>{escape(d.metric)}</th><td class="num">{d.a:.4f}</td>'
            f'<td class="num">{d.b:.4f}</td><td class="num">{_signed(d.delta)}</td>'
            f'<td class="num">[{_signed(d.low)}, {_signed(d.high)}]</td><td class="num">{d.p:.3g} ({d.test})</td>'
            f"<td>{'*' if d.real else ''}</td></tr>"
            for d in c.differences
        )
        sections.append((f"{c.model}: {c.b} against {c.a}", [f"<table><tr>{head}</tr>{rows}</table>"]))
    note = html.paragraph(
        "* (and bold): the paired 95% interval of the difference excludes 0. The same resampled dev examples for both "
        "runs; McNemar's exact test for accuracies, the paired bootstrap for Pearson's r and overall."
    )
    sections.append(("How to read it", [note]))
    return html.page("mtbert: is the difference real?", sections)
