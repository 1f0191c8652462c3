"""Tasks as data: each task is an entry of ``task_defs`` in ``params.yaml``; nothing in the library names one.

A :class:`~mtbert.task_defs.TaskDef` is what the user writes: the task's kind, its three files, its text columns,
its label (column and range), class names, ensemble rules and leaderboard column. The kind fixes everything else
through one table, :data:`KINDS`: the head's outputs, the allowed losses and encodings, how head outputs decode to
predictions and class probabilities, the metric and how it maps to [0, 1] for the overall score. A :class:`TaskSpec`
is a named definition with a chosen head (encoding, loss, MLP, dropout): what the model, the trainer, the predictions
and the report use. A new task is a new entry of ``task_defs``; a new kind is a new entry of :data:`KINDS` (and of
``KindName``). A saved model keeps its tasks' definitions (:mod:`mtbert.model`), so it predicts without
``params.yaml``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score
from torch import Tensor, nn
from torch.nn import functional as F

from mtbert.data.reader import LabelRule
from mtbert.heads import build_head, check_dropout

if TYPE_CHECKING:
    from mtbert.task_defs import TaskDef

Encoding = Literal["single", "cross", "bi-cosine", "bi-concat"]
KindName = Literal["classification", "pair-classification", "pair-regression"]
LossFn = Callable[[Tensor, Tensor], Tensor]
SPLITS = ("train", "dev", "test")


def _pearson(pred: np.ndarray, gold: np.ndarray) -> float:
    if np.std(pred) == 0 or np.std(gold) == 0:
        return 0.0  # undefined correlation: a constant predictor explains nothing
    return float(pearsonr(pred, gold).statistic)


def _accuracy(pred: np.ndarray, gold: np.ndarray) -> float:
    return float(accuracy_score(gold.astype(int), pred.astype(int)))


def _binary_probabilities(logit: Tensor) -> Tensor:
    p = torch.sigmoid(logit)
    return torch.stack([1 - p, p], dim=-1)


def _class_losses(low: float, high: float) -> dict[str, LossFn]:
    return {
        "ce": lambda out, y: F.cross_entropy(out, y.long()),
        # label smoothing 0.1 (Szegedy et al. 2016; Müller et al. 2019): with 5 classes, targets 0.92 / 0.02
        "ce-smooth": lambda out, y: F.cross_entropy(out, y.long(), label_smoothing=0.1),
    }


def _binary_losses(low: float, high: float) -> dict[str, LossFn]:
    return {
        "bce": lambda out, y: F.binary_cross_entropy_with_logits(out, y),
        "mse": lambda out, y: F.mse_loss(torch.sigmoid(out), y),
    }


def _score_losses(low: float, high: float) -> dict[str, LossFn]:
    def cosine_embedding(out: Tensor, y: Tensor) -> Tensor:
        """``torch.nn.CosineEmbeddingLoss`` (margin 0) on the pair's cosine ``out / high`` (the bi-cosine head
        outputs ``cos * high``): a pair scored at or above the range's midpoint counts as similar (loss ``1 - cos``),
        below as dissimilar (loss ``max(0, cos)``)."""
        cos = out / high
        return torch.where(y >= (low + high) / 2, 1 - cos, cos.clamp(min=0)).mean()

    return {"mse": lambda out, y: F.mse_loss(out, y), "cosine-embedding": cosine_embedding}


@dataclass(frozen=True)
class Kind:
    """What a kind of task fixes, given the label's range ``[low, high]``.

    Parameters:
        sentences: text columns of a row (1: ``single`` encoding; 2: a pair).
        encodings: the allowed encodings, the first is the default.
        losses: ``(low, high) -> {name: (head output, float labels) -> mean loss}``; the first is the default.
        decode: ``(head output, low, high) -> predictions`` (class index, 0/1 or a score).
        probabilities: head output -> [B, classes] class probabilities; None for a score.
        rules: the ensemble rules (:data:`mtbert.combine.RULES`) a task of this kind may list.
        metric_name / metric / normalise: the dev metric, and the map of it to [0, 1] for the overall score.
        integer: labels and predictions are class indices ``0 .. high``.
        raw_cosine_losses: losses that need the unclipped cosine; they require the ``bi-cosine`` encoding.
        cosine: a ``bi-cosine`` head outputs ``cos * high`` (a score) rather than a learnt ``a·cos + b`` logit.
        output_per_class: the head has one output per class (a softmax); otherwise one (a logit or a score).
        label_max: the label's ``max`` when the kind fixes it (1 for a 0/1 label).
    """

    sentences: int
    encodings: tuple[Encoding, ...]
    losses: Callable[[float, float], dict[str, LossFn]]
    decode: Callable[[Tensor, float, float], Tensor]
    probabilities: Callable[[Tensor], Tensor] | None
    rules: tuple[str, ...]
    metric_name: str
    metric: Callable[[np.ndarray, np.ndarray], float]
    normalise: Callable[[float], float] = float
    integer: bool = True
    raw_cosine_losses: frozenset[str] = frozenset()
    cosine: bool = False
    output_per_class: bool = False
    label_max: float | None = None


KINDS: dict[str, Kind] = {
    "classification": Kind(
        sentences=1,
        encodings=("single",),
        losses=_class_losses,
        decode=lambda out, low, high: out.argmax(-1),
        probabilities=lambda out: torch.softmax(out, dim=-1),
        rules=("rounded_mean", "mean_probability"),
        metric_name="acc",
        metric=_accuracy,
        output_per_class=True,
    ),
    "pair-classification": Kind(
        sentences=2,
        encodings=("cross", "bi-cosine", "bi-concat"),
        losses=_binary_losses,
        decode=lambda out, low, high: (out > 0).long(),
        probabilities=_binary_probabilities,
        rules=("majority_vote", "mean_probability", "rounded_mean"),
        metric_name="acc",
        metric=_accuracy,
        label_max=1,
    ),
    "pair-regression": Kind(
        sentences=2,
        encodings=("bi-cosine", "cross", "bi-concat"),
        losses=_score_losses,
        decode=lambda out, low, high: out.clamp(low, high),
        probabilities=None,
        rules=("mean",),
        metric_name="pearson",
        metric=_pearson,
        normalise=lambda r: (1 + r) / 2,
        integer=False,
        raw_cosine_losses=frozenset({"cosine-embedding"}),
        cosine=True,
    ),
}


@functools.cache
def _losses(kind: str, low: float, high: float) -> Mapping[str, LossFn]:
    """The losses of a task of ``kind`` with labels in [low, high], built once (read at every training step)."""
    return MappingProxyType(KINDS[kind].losses(low, high))


@dataclass(frozen=True)
class TaskSpec:
    """One task ready to train and predict: its name, its definition and the chosen head.

    Everything else is read from the definition and its kind (:data:`KINDS`): ``text_columns``, ``label`` (a
    :class:`LabelRule`), ``n_out``, ``classes``, ``losses``, :meth:`decode`, ``probabilities``, ``metric_name`` and
    ``metric``, ``normalise``, ``rules``, ``encodings``, ``cosine_scale``, ``class_names``, ``leaderboard_column``
    and :meth:`file_name`.

    Parameters:
        name: short name used in params, file names and metric keys (``<name>_<metric_name>``).
        definition: the task's :class:`TaskDef`.
        encoding, loss_name, mlp, head_dropout: the chosen head (see :meth:`configure`); empty means the default.
            ``single`` sentence; ``cross`` = the pair in one sequence ``[CLS] a [SEP] b [SEP]``; ``bi-cosine`` /
            ``bi-concat`` = each sentence pooled separately, the head compares ``cos(u, v)`` or reads
            ``(u, v, |u - v|)``.
    """

    name: str
    definition: TaskDef
    encoding: Encoding = None  # type: ignore[assignment]  # set to encodings[0] when not chosen
    loss_name: str = ""
    mlp: tuple[int, ...] = ()
    head_dropout: float | None = None

    def __post_init__(self) -> None:
        if self.encoding is None:
            object.__setattr__(self, "encoding", self.encodings[0])
        if not self.loss_name:
            object.__setattr__(self, "loss_name", next(iter(self.losses)))

    @property
    def kind(self) -> Kind:
        return KINDS[self.definition.kind]

    @property
    def text_columns(self) -> tuple[str, ...]:
        return self.definition.text_columns

    @property
    def label(self) -> LabelRule:
        label = self.definition.label
        return LabelRule(label.column, label.min, label.max, integer=self.kind.integer)

    @property
    def classes(self) -> int:
        """Classes of a classification task (its class probabilities are written beside the predictions); 0 for a
        score."""
        return self.definition.classes

    @property
    def n_out(self) -> int:
        """Outputs of the head: one per class (a softmax), or 1 (a logit or a score)."""
        return self.classes if self.kind.output_per_class else 1

    @property
    def losses(self) -> Mapping[str, LossFn]:
        return _losses(self.definition.kind, self.definition.label.min, self.definition.label.max)

    @property
    def loss(self) -> LossFn:
        return self.losses[self.loss_name]

    def decode(self, out: Tensor) -> Tensor:
        """Head output -> predictions (class index, 0/1 or a score clamped to the label's range)."""
        return self.kind.decode(out, self.definition.label.min, self.definition.label.max)

    @property
    def probabilities(self) -> Callable[[Tensor], Tensor] | None:
        return self.kind.probabilities

    @property
    def metric_name(self) -> str:
        return self.kind.metric_name

    @property
    def metric(self) -> Callable[[np.ndarray, np.ndarray], float]:
        return self.kind.metric

    @property
    def normalise(self) -> Callable[[float], float]:
        return self.kind.normalise

    @property
    def prediction_is_int(self) -> bool:
        return self.kind.integer

    @property
    def encodings(self) -> tuple[Encoding, ...]:
        return self.kind.encodings

    @property
    def raw_cosine_losses(self) -> frozenset[str]:
        return self.kind.raw_cosine_losses

    @property
    def cosine_scale(self) -> float | None:
        """A ``bi-cosine`` head outputs ``cos * cosine_scale`` (a score); None: a learnt ``a·cos + b`` logit."""
        return self.definition.label.max if self.kind.cosine else None

    @property
    def rules(self) -> tuple[str, ...]:
        """The ensemble rules this task allows, the first is the default; ``ensemble.rules`` picks one."""
        return self.definition.rules

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.definition.class_names

    @property
    def leaderboard_column(self) -> str:
        return self.definition.leaderboard_column

    def file_name(self, split: str) -> str:
        return getattr(self.definition.files, split)

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


def task_specs(definitions: dict[str, TaskDef]) -> dict[str, TaskSpec]:
    """Every defined task with its default head, by name."""
    return {name: TaskSpec(name, definition) for name, definition in definitions.items()}


def overall_score(metrics: dict[str, float], tasks: list[TaskSpec]) -> float:
    """Mean of normalised task metrics, e.g. (sst_acc + para_acc + (1 + sts_pearson) / 2) / 3."""
    return float(np.mean([t.normalise(metrics[f"{t.name}_{t.metric_name}"]) for t in tasks]))


def init_head(head: nn.Module, generator: torch.Generator | None = None) -> None:
    """Re-initialise a head's parameters in place (normal(0, 0.02) weights, zero biases, as BERT does)."""
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02, generator=generator)
            nn.init.zeros_(module.bias)
