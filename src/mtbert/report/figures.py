"""The report's figures, each written as one PNG (matplotlib, Agg backend: no display, no network)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mtbert.files import write_atomic
from mtbert.report.sources import Curve

DPI = 110


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=DPI, format="png"))
    plt.close(fig)


def _lines(ax, curves: dict[str, Curve], title: str, ylabel: str) -> None:
    for label, curve in curves.items():
        ax.plot(curve.steps, curve.values, marker="o" if len(curve.steps) <= 12 else None, ms=4, label=label)
    ax.set(title=title, xlabel="training step", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "nothing logged", ha="center", va="center", transform=ax.transAxes)


def training_curves(losses: dict[str, Curve], metrics: dict[str, Curve], title: str, path: Path) -> None:
    """Two panels: training loss and dev metric against the training step, one line per label."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    _lines(left, losses, f"{title}: training loss", "loss")
    _lines(right, metrics, f"{title}: dev metric", "metric")
    _save(fig, path)


def gradient_lines(groups: dict[str, dict[str, Curve]], path: Path) -> None:
    """One panel per statistic (cosine, conflict share, corrections, …), one line per task pair."""
    columns = min(2, len(groups))
    rows = -(-len(groups) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for ax, (name, curves) in zip(axes.flat, groups.items(), strict=False):
        _lines(ax, curves, name, name)
        if name == "cos":
            ax.axhline(0, color="grey", lw=0.8)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    _save(fig, path)


# Each quantity's own scale: a cosine in [-1, 1] diverging at 0, a share in [0, 1] sequential.
HEATMAP_SCALES = {"cos": ("coolwarm", -1.0, 1.0), "conflict": ("Greys", 0.0, 1.0)}


def pair_heatmaps(tasks: list[str], matrices: dict[str, np.ndarray], path: Path) -> None:
    """One T×T heatmap per statistic (e.g. mean cosine, conflict share over the epochs), values written in cells,
    each on its quantity's scale (:data:`HEATMAP_SCALES`; others: diverging, symmetric about 0)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.8), squeeze=False)
    for ax, (name, matrix) in zip(axes[0], matrices.items(), strict=True):
        limit = float(np.nanmax(np.abs(matrix))) if np.isfinite(matrix).any() else 1.0
        cmap_name, low, high = HEATMAP_SCALES.get(name, ("coolwarm", -(limit or 1.0), limit or 1.0))
        cmap = matplotlib.colormaps[cmap_name].with_extremes(bad="white")  # the diagonal: no pair
        image = ax.imshow(matrix, cmap=cmap, vmin=low, vmax=high)
        ax.set(title=name, xticks=range(len(tasks)), yticks=range(len(tasks)), xticklabels=tasks, yticklabels=tasks)
        for i, j in np.ndindex(matrix.shape):
            if np.isfinite(matrix[i, j]):
                ax.text(j, i, f"{matrix[i, j]:.3f}", ha="center", va="center", fontsize="small")
        fig.colorbar(image, ax=ax, shrink=0.8)
    _save(fig, path)


def pair_matrix(tasks: list[str], values: dict[str, float]) -> np.ndarray:
    """The symmetric T×T matrix of per-pair values keyed ``<a>_<b>`` (nan on the diagonal and where missing)."""
    matrix = np.full((len(tasks), len(tasks)), np.nan)
    for i, j in combinations(range(len(tasks)), 2):
        value = values.get(f"{tasks[i]}_{tasks[j]}", np.nan)
        matrix[i, j] = matrix[j, i] = value
    return matrix


def confusion(matrices: dict[str, np.ndarray], path: Path) -> None:
    """One confusion matrix (rows gold, columns predicted, counts in cells) per title."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.4 * len(matrices), 4), squeeze=False)
    for ax, (title, counts) in zip(axes[0], matrices.items(), strict=True):
        ax.imshow(counts, cmap="Blues")
        classes = range(len(counts))
        ax.set(title=title, xlabel="predicted", ylabel="gold", xticks=classes, yticks=classes)
        for i, j in np.ndindex(counts.shape):
            dark = counts[i, j] > counts.max() / 2
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", color="white" if dark else "black")
    _save(fig, path)


def scatter(pred: np.ndarray, gold: np.ndarray, title: str, path: Path) -> None:
    """Predicted against gold scores, with the diagonal."""
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.scatter(gold, pred, s=8, alpha=0.5)
    low, high = float(min(gold.min(), pred.min())), float(max(gold.max(), pred.max()))
    ax.plot([low, high], [low, high], color="grey", lw=0.8)
    ax.set(title=title, xlabel="gold", ylabel="predicted")
    ax.grid(alpha=0.3)
    _save(fig, path)


def threshold(thresholds: np.ndarray, accuracies: dict[str, np.ndarray], title: str, path: Path) -> None:
    """Accuracy against the decision threshold on p(1), one line per model; the models' own rule at 0.5."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, acc in accuracies.items():
        ax.plot(thresholds, acc, label=label)
    ax.axvline(0.5, color="grey", lw=0.8, ls="--")
    ax.set(title=title, xlabel="threshold on p(1)", ylabel="accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)
