"""The three tasks, as data.

Each :class:`TaskSpec` says where a task's data lives, how its inputs are encoded, which head and loss it
trains, how outputs decode to predictions and how predictions are scored. Adding a task means adding one
entry to :data:`TASKS`; nothing else in the library names a task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score
from torch import Tensor, nn
from torch.nn import functional as F

from mtbert.data.reader import LabelRule
from mtbert.ensemble import majority_vote, mean, rounded_mean
from mtbert.heads import CosineHead, LinearHead

Encoding = Literal["single", "cross", "bi"]
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Parameters:
        name: short name used in params, file names and metrics.
        file_stem: raw files are ``<file_stem>-{train,dev,test-student}.csv``.
        text_columns: one column for ``single`` encoding, two for ``cross`` and ``bi``.
        label: how the label column is validated.
        encoding: ``single`` sentence; ``cross`` = the pair in one sequence ``[CLS] a [SEP] b [SEP]``;
            ``bi`` = each sentence pooled separately, the head compares the two embeddings.
        make_head: ``hidden_size, dropout -> head``.
        loss: ``(head output, float labels) -> scalar`` mean over the batch.
        decode: head output -> predictions (class index, 0/1 or a score).
        metric_name / metric: scores decoded predictions against gold labels.
        combine: the ensemble rule, [members, rows] predictions -> [rows].
        normalise: maps the metric to [0, 1] for the overall score.
    """

    name: str
    file_stem: str
    text_columns: tuple[str, ...]
    label: LabelRule
    encoding: Encoding
    make_head: Callable[[int, float], nn.Module]
    loss: Callable[[Tensor, Tensor], Tensor]
    decode: Callable[[Tensor], Tensor]
    metric_name: str
    metric: Callable[[np.ndarray, np.ndarray], float]
    combine: Callable[[np.ndarray], np.ndarray]
    normalise: Callable[[float], float] = float
    prediction_is_int: bool = True

    def file_name(self, split: str) -> str:
        return f"{self.file_stem}-{'test-student' if split == 'test' else split}.csv"


def _pearson(pred: np.ndarray, gold: np.ndarray) -> float:
    if np.std(pred) == 0 or np.std(gold) == 0:
        return 0.0  # undefined correlation: a constant predictor explains nothing
    return float(pearsonr(pred, gold).statistic)


def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(accuracy_score(gold.astype(int), pred.astype(int)))


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="sst",
            file_stem="ids-sst",
            text_columns=("sentence",),
            label=LabelRule("sentiment", 0, 4, integer=True),
            encoding="single",
            make_head=lambda hidden, dropout: LinearHead(hidden, 5, dropout),
            loss=lambda out, y: F.cross_entropy(out, y.long()),
            decode=lambda out: out.argmax(-1),
            metric_name="acc",
            metric=_accuracy,
            combine=rounded_mean,
        ),
        TaskSpec(
            name="para",
            file_stem="quora",
            text_columns=("sentence1", "sentence2"),
            label=LabelRule("is_duplicate", 0, 1, integer=True),
            encoding="cross",
            make_head=lambda hidden, dropout: LinearHead(hidden, 1, dropout),
            loss=lambda out, y: F.binary_cross_entropy_with_logits(out.squeeze(-1), y),
            decode=lambda out: (out.squeeze(-1) > 0).long(),
            metric_name="acc",
            metric=_accuracy,
            combine=majority_vote,
        ),
        TaskSpec(
            name="sts",
            file_stem="sts",
            text_columns=("sentence1", "sentence2"),
            label=LabelRule("similarity", 0, 5),
            encoding="bi",
            make_head=lambda hidden, dropout: CosineHead(5.0),
            loss=lambda out, y: F.mse_loss(out, y),
            decode=lambda out: out,
            metric_name="pearson",
            metric=_pearson,
            combine=mean,
            normalise=lambda r: (1 + r) / 2,
            prediction_is_int=False,
        ),
    )
}


def get_tasks(names: tuple[str, ...] | list[str]) -> list[TaskSpec]:
    return [TASKS[n] for n in names]


def overall_score(metrics: dict[str, float], tasks: list[TaskSpec]) -> float:
    """Mean of normalised task metrics, e.g. (sst_acc + para_acc + (1 + sts_pearson) / 2) / 3."""
    return float(np.mean([t.normalise(metrics[f"{t.name}_{t.metric_name}"]) for t in tasks]))


def init_head(head: nn.Module, generator: torch.Generator | None = None) -> None:
    """Re-initialise a head's parameters in place (normal(0, 0.02) weights, zero biases, as BERT does)."""
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02, generator=generator)
            nn.init.zeros_(module.bias)
