"""Inference: decoded predictions for a split, in input order, and prediction files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from mtbert.data.encoded import EncodedSplit, SpecialTokens, collate
from mtbert.devices import autocast_dtype
from mtbert.errors import DataError
from mtbert.model import MultiTaskModel
from mtbert.prepare import TrainingData
from mtbert.tasks import TaskSpec, overall_score


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
) -> np.ndarray:
    """Predictions for every row of ``split`` (class index, 0/1 or score), in the split's row order."""
    was_training = model.training
    model.eval()
    amp = autocast_dtype(precision, device)
    # Rows sorted by length make batches of similar length, so little compute goes to padding.
    order = np.argsort(split.lengths(), kind="stable")
    out = np.full(len(split), np.nan)  # never np.empty: a row left out must not read as a prediction
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = collate(split, rows, spec.encoding, special, max_length).to(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(spec.name, batch.inputs)
        out[rows] = spec.decode(logits.float()).cpu().numpy()
    model.train(was_training)
    missing = np.flatnonzero(~np.isfinite(out))
    if len(missing):
        raise DataError(f"{spec.name}: no finite prediction for {len(missing)} rows (first: row {missing[0]})")
    return out


def evaluate(
    model: MultiTaskModel, data: TrainingData, device: torch.device, batch_size: int, precision: str
) -> dict[str, float]:
    """Each task's dev metric (``<task>_<metric>``) and their ``overall`` score."""
    metrics = {}
    for name, d in data.tasks.items():
        pred = predict_split(model, d.spec, d.dev, data.special, data.max_length, device, batch_size, precision)
        metrics[f"{name}_{d.spec.metric_name}"] = d.spec.metric(pred, d.dev.labels)
    metrics["overall"] = overall_score(metrics, [d.spec for d in data.tasks.values()])
    return metrics


def format_prediction(value: float, spec: TaskSpec) -> str:
    return str(int(value)) if spec.prediction_is_int else f"{value:.6f}"


def write_predictions(path: Path, ids: list[str], values: np.ndarray, spec: TaskSpec) -> None:
    """``id,prediction`` with one row per input id, in input order; refuses to write a value that is not finite."""
    if len(values) != len(ids):
        raise DataError.at(path, problem=f"refusing to write {len(values)} predictions for {len(ids)} ids")
    if not np.isfinite(values).all():
        raise DataError.at(
            path, problem=f"refusing to write non-finite predictions (id {ids[np.argmin(np.isfinite(values))]!r})"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "prediction"])
        writer.writerows((i, format_prediction(v, spec)) for i, v in zip(ids, values, strict=True))
