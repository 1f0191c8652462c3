"""Inference: decoded predictions for a split, in input order, and prediction files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtbert.data.encoded import EncodedSplit, SpecialTokens, collate
from mtbert.devices import autocast_dtype
from mtbert.errors import DataError
from mtbert.files import open_atomic
from mtbert.model import MultiTaskModel
from mtbert.prepare import TrainingData
from mtbert.progress import progress as progress_bar
from mtbert.tasks import TaskSpec, overall_score


@dataclass(frozen=True)
class SplitPredictions:
    """One split's predictions in row order: ``values`` [N] (class index, 0/1 or score) and, for a classification
    task, ``probabilities`` [N, classes] (what the ``mean_probability`` ensemble rule averages)."""

    values: np.ndarray
    probabilities: np.ndarray | None = None


@torch.no_grad()
def predict_split(
    model: MultiTaskModel,
    spec: TaskSpec,
    split: EncodedSplit,
    special: SpecialTokens,
    max_length: int,
    device: torch.device,
    batch_size: int = 128,
    precision: str = "auto",
    progress: bool = False,
) -> SplitPredictions:
    """Predictions for every row of ``split`` (class index, 0/1 or score, and class probabilities for a
    classification task), in the split's row order; ``progress``: a bar over the batches."""
    was_training = model.training
    model.eval()
    amp = autocast_dtype(precision, device)
    # Rows sorted by length make batches of similar length, so little compute goes to padding.
    order = np.argsort(split.lengths(), kind="stable")
    out = np.full(len(split), np.nan)  # never np.empty: a row left out must not read as a prediction
    probs = np.full((len(split), spec.classes), np.nan) if spec.classes else None
    for start in progress_bar(range(0, len(order), batch_size), progress, desc=f"predict {spec.name}"):
        rows = order[start : start + batch_size]
        batch = collate(split, rows, spec.encoding, special, max_length).to(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(spec.name, batch.inputs)
        out[rows] = spec.decode(logits.float()).cpu().numpy()
        if probs is not None:
            probs[rows] = spec.probabilities(logits.float()).cpu().numpy()
    model.train(was_training)
    missing = np.flatnonzero(~finite_rows(out, probs))
    if len(missing):
        raise DataError(f"{spec.name}: no finite prediction for {len(missing)} rows (first: row {missing[0]})")
    return SplitPredictions(out, probs)


def finite_rows(values: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray:
    """True for each row whose prediction (and every class probability, if given) is finite."""
    finite = np.isfinite(values)
    return finite if probabilities is None else finite & np.isfinite(probabilities).all(axis=1)


def evaluate(
    model: MultiTaskModel,
    data: TrainingData,
    device: torch.device,
    batch_size: int,
    precision: str,
    progress: bool = False,
) -> dict[str, float]:
    """Each task's dev metric (``<task>_<metric>``) and their ``overall`` score; ``progress``: a bar per task."""
    metrics = {}
    for name, d in data.tasks.items():
        pred = predict_split(
            model, d.spec, d.dev, data.special, data.max_length, device, batch_size, precision, progress
        ).values
        metrics[f"{name}_{d.spec.metric_name}"] = d.spec.metric(pred, d.dev.labels)
    metrics["overall"] = overall_score(metrics, [d.spec for d in data.tasks.values()])
    return metrics


def format_prediction(value: float, spec: TaskSpec) -> str:
    return str(int(value)) if spec.prediction_is_int else f"{value:.6f}"


def probability_columns(classes: int) -> list[str]:
    return [f"p_{k}" for k in range(classes)]


def write_predictions(
    path: Path, ids: list[str], values: np.ndarray, spec: TaskSpec, probabilities: np.ndarray | None = None
) -> None:
    """``id,prediction`` (plus ``p_0,…`` when ``probabilities`` [N, classes] are given) with one row per input id,
    in input order; refuses to write a value that is not finite."""
    if len(values) != len(ids) or (probabilities is not None and len(probabilities) != len(ids)):
        raise DataError.at(path, problem=f"refusing to write {len(values)} predictions for {len(ids)} ids")
    finite = finite_rows(values, probabilities)
    if not finite.all():
        raise DataError.at(path, problem=f"refusing to write non-finite predictions (id {ids[np.argmin(finite)]!r})")
    header = ["id", "prediction"] + ([] if probabilities is None else probability_columns(probabilities.shape[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row, (i, v) in enumerate(zip(ids, values, strict=True)):
            probs = [] if probabilities is None else [f"{p:.6f}" for p in probabilities[row]]
            writer.writerow([i, format_prediction(v, spec), *probs])
