"""The three tasks, as data.

Each :class:`TaskSpec` says where a task's data lives, how its inputs are encoded, which head and loss it
trains, how outputs decode to predictions and how predictions are scored. Adding a task means adding one
entry to :data:`TASKS`; nothing else in the library names a task.
"""

from __future__ import annotations

import dataclasses
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
from mtbert.heads import build_head, check_dropout

Encoding = Literal["single", "cross", "bi-cosine", "bi-concat"]
LossFn = Callable[[Tensor, Tensor], Tensor]
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Parameters:
        name: short name used in params, file names and metrics.
        file_stem: raw files are ``<file_stem>-{train,dev,test-student}.csv``.
        text_columns: one column for ``single`` encoding, two for the pair encodings.
        label: how the label column is validated.
        n_out: outputs of the head (classes; 1 for a logit or a score).
        losses: the allowed losses, ``(head output, float labels) -> scalar`` mean over the batch; the first is the
            default.
        decode: head output -> predictions (class index, 0/1 or a score).
        metric_name / metric: scores decoded predictions against gold labels.
        rules: the ensemble rules this task allows (:data:`mtbert.combine.RULES`), the first is the default
            (the design card's); ``ensemble.rules`` picks one.
        encodings: the allowed encodings, the first is the default. ``single`` sentence; ``cross`` = the pair in one
            sequence ``[CLS] a [SEP] b [SEP]``; ``bi-cosine`` / ``bi-concat`` = each sentence pooled separately, the
            head compares ``cos(u, v)`` or reads ``(u, v, |u - v|)``.
        normalise: maps the metric to [0, 1] for the overall score.
        classes / probabilities: a classification task's number of classes and head output -> [B, classes]
            class probabilities (written beside the predictions; 0 / None for a score).
        cosine_scale: a ``bi-cosine`` head outputs ``cos * cosine_scale`` (a score); None: a learnt ``a·cos + b`` logit.
        raw_cosine_losses: losses that need the unclipped cosine; they require the ``bi-cosine`` encoding.
        leaderboard_column: the prediction column of the CS224N leaderboard file ``<name>-<split>-output.csv``
            (the course's spelling, ``Predicted_Similiary`` included).
        class_names: a classification task's class labels, by class index (shown by ``mtbert predict``).
        encoding, loss_name, mlp, head_dropout: the chosen head (see :meth:`configure`); empty means the default.
    """

    name: str
    file_stem: str
    text_columns: tuple[str, ...]
    label: LabelRule
    n_out: int
    losses: dict[str, LossFn]
    decode: Callable[[Tensor], Tensor]
    metric_name: str
    metric: Callable[[np.ndarray, np.ndarray], float]
    rules: tuple[str, ...]
    leaderboard_column: str
    encodings: tuple[Encoding, ...] = ("single",)
    normalise: Callable[[float], float] = float
    prediction_is_int: bool = True
    classes: int = 0
    probabilities: Callable[[Tensor], Tensor] | None = None
    cosine_scale: float | None = None
    raw_cosine_losses: frozenset[str] = frozenset()
    class_names: tuple[str, ...] = ()
    encoding: Encoding = None  # type: ignore[assignment]  # set to encodings[0] when not chosen
    loss_name: str = ""
    mlp: tuple[int, ...] = ()
    head_dropout: float | None = None

    def __post_init__(self) -> None:
        if self.encoding is None:
            object.__setattr__(self, "encoding", self.encodings[0])
        if not self.loss_name:
            object.__setattr__(self, "loss_name", next(iter(self.losses)))

    def file_name(self, split: str) -> str:
        return f"{self.file_stem}-{'test-student' if split == 'test' else split}.csv"

    @property
    def loss(self) -> LossFn:
        return self.losses[self.loss_name]

    def make_head(self, hidden_size: int, dropout: float) -> nn.Module:
        """A fresh head for this task's encoding (``head_dropout``, when set, overrides ``dropout``)."""
        return build_head(
            self.encoding,
            hidden_size,
            self.n_out,
            dropout if self.head_dropout is None else self.head_dropout,
            self.mlp,
            self.cosine_scale,
            clip_negative=self.loss_name not in self.raw_cosine_losses,
        )

    def configure(
        self,
        encoding: str | None = None,
        loss: str | None = None,
        mlp: tuple[int, ...] = (),
        dropout: float | None = None,
    ) -> TaskSpec:
        """This task with another head: ``None`` keeps the default. Raises ``ValueError`` naming the bad option."""
        encoding = encoding or self.encodings[0]
        loss = loss or next(iter(self.losses))
        if encoding not in self.encodings:
            raise ValueError(f"encoding: got {encoding!r}, expected one of {', '.join(self.encodings)}")
        if loss not in self.losses:
            raise ValueError(f"loss: got {loss!r}, expected one of {', '.join(self.losses)}")
        if loss in self.raw_cosine_losses and encoding != "bi-cosine":
            raise ValueError(f"loss: {loss!r} compares cosine similarities and needs encoding 'bi-cosine'")
        if encoding == "bi-cosine" and mlp:
            raise ValueError("mlp: a bi-cosine head has no layers; use encoding 'bi-concat' or 'cross' for an MLP")
        if any(width < 1 for width in mlp):
            raise ValueError(f"mlp: hidden sizes must be >= 1, got {list(mlp)}")
        if dropout is not None:
            check_dropout(dropout)
        return dataclasses.replace(self, encoding=encoding, loss_name=loss, mlp=tuple(mlp), head_dropout=dropout)

    def options(self) -> dict:
        """The chosen head, as :meth:`configure` takes it (saved with a model so it can be rebuilt)."""
        return {"encoding": self.encoding, "loss": self.loss_name, "mlp": list(self.mlp), "dropout": self.head_dropout}


def _pearson(pred: np.ndarray, gold: np.ndarray) -> float:
    if np.std(pred) == 0 or np.std(gold) == 0:
        return 0.0  # undefined correlation: a constant predictor explains nothing
    return float(pearsonr(pred, gold).statistic)


def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(accuracy_score(gold.astype(int), pred.astype(int)))


def _cosine_embedding(out: Tensor, y: Tensor) -> Tensor:
    """``torch.nn.CosineEmbeddingLoss`` (margin 0) on the pair's cosine ``out / 5``: a pair with similarity >= 2.5
    counts as similar (loss ``1 - cos``), below as dissimilar (loss ``max(0, cos)``)."""
    cos = out / 5.0
    return torch.where(y >= 2.5, 1 - cos, cos.clamp(min=0)).mean()


def _binary_probabilities(logit: Tensor) -> Tensor:
    p = torch.sigmoid(logit)
    return torch.stack([1 - p, p], dim=-1)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="sst",
            file_stem="ids-sst",
            text_columns=("sentence",),
            label=LabelRule("sentiment", 0, 4, integer=True),
            n_out=5,
            losses={
                "ce": lambda out, y: F.cross_entropy(out, y.long()),
                # label smoothing 0.1 (Szegedy et al. 2016; Müller et al. 2019): targets 0.92 / 0.02
                "ce-smooth": lambda out, y: F.cross_entropy(out, y.long(), label_smoothing=0.1),
            },
            decode=lambda out: out.argmax(-1),
            metric_name="acc",
            metric=_accuracy,
            rules=("rounded_mean", "mean_probability"),
            leaderboard_column="Predicted_Sentiment",
            classes=5,
            class_names=("negative", "somewhat negative", "neutral", "somewhat positive", "positive"),
            probabilities=lambda out: torch.softmax(out, dim=-1),
        ),
        TaskSpec(
            name="para",
            file_stem="quora",
            text_columns=("sentence1", "sentence2"),
            label=LabelRule("is_duplicate", 0, 1, integer=True),
            n_out=1,
            losses={
                "bce": lambda out, y: F.binary_cross_entropy_with_logits(out, y),
                "mse": lambda out, y: F.mse_loss(torch.sigmoid(out), y),
            },
            decode=lambda out: (out > 0).long(),
            metric_name="acc",
            metric=_accuracy,
            rules=("majority_vote", "mean_probability"),
            leaderboard_column="Predicted_Is_Paraphrase",
            classes=2,
            class_names=("not paraphrase", "paraphrase"),
            probabilities=_binary_probabilities,
            encodings=("cross", "bi-cosine", "bi-concat"),
        ),
        TaskSpec(
            name="sts",
            file_stem="sts",
            text_columns=("sentence1", "sentence2"),
            label=LabelRule("similarity", 0, 5),
            n_out=1,
            losses={"mse": lambda out, y: F.mse_loss(out, y), "cosine-embedding": _cosine_embedding},
            decode=lambda out: out.clamp(0.0, 5.0),
            metric_name="pearson",
            metric=_pearson,
            rules=("mean",),
            leaderboard_column="Predicted_Similiary",  # sic: the course's evaluation script spells it so
            encodings=("bi-cosine", "cross", "bi-concat"),
            normalise=lambda r: (1 + r) / 2,
            prediction_is_int=False,
            cosine_scale=5.0,
            raw_cosine_losses=frozenset({"cosine-embedding"}),
        ),
    )
}


def get_tasks(names: tuple[str, ...] | list[str], heads: dict | None = None) -> list[TaskSpec]:
    """The specs of ``names``, each configured with ``heads[name]`` (the keyword arguments of
    :meth:`TaskSpec.configure`)."""
    heads = heads or {}
    return [TASKS[n].configure(**heads[n]) if n in heads else TASKS[n] for n in names]


def overall_score(metrics: dict[str, float], tasks: list[TaskSpec]) -> float:
    """Mean of normalised task metrics, e.g. (sst_acc + para_acc + (1 + sts_pearson) / 2) / 3."""
    return float(np.mean([t.normalise(metrics[f"{t.name}_{t.metric_name}"]) for t in tasks]))


def init_head(head: nn.Module, generator: torch.Generator | None = None) -> None:
    """Re-initialise a head's parameters in place (normal(0, 0.02) weights, zero biases, as BERT does)."""
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02, generator=generator)
            nn.init.zeros_(module.bias)
