"""Predictions outside the pipeline: load saved models, predict sentences or a CS224N file, combine members.

A model folder (written by ``pretrain`` or ``finetune``) holds the weights, the encoder config and ``mtbert.json``,
which holds its tasks' definitions and heads, the tokenizer it was trained with (``model.name``) and
``model.max_length``: no ``params.yaml`` is needed. Folders saved before the tokenizer and length were recorded get
:data:`DEFAULT_TOKENIZER` and :data:`DEFAULT_MAX_LENGTH`, the params' defaults; a folder without task definitions
(saved before they were recorded) is refused. Inputs go through the pipeline's own path (tokenize without special
tokens, then :func:`~mtbert.predictions.predict_split`), so a sentence gets the prediction it would get in a prepared
file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mtbert.combine import RULES
from mtbert.data.encoded import SpecialTokens, encode_table
from mtbert.data.reader import Table, header_columns, read_table
from mtbert.errors import DataError
from mtbert.model import MultiTaskModel, load_model, saved_meta, saved_specs
from mtbert.predictions import SplitPredictions, predict_split
from mtbert.pretrained import load_tokenizer
from mtbert.tasks import TaskSpec

DEFAULT_TOKENIZER = "embedded"
DEFAULT_MAX_LENGTH = 128
COMMAND_LINE = "command line"  # where sentences given as arguments come from, in error messages


@dataclass(frozen=True)
class Predictor:
    """One saved model, ready to predict: the model on its device, its tokenizer and input length."""

    folder: Path
    model: MultiTaskModel
    tokenizer: object
    special: SpecialTokens
    max_length: int
    device: torch.device

    def spec(self, task: str) -> TaskSpec:
        """The task as this model's head was trained (encoding, loss, …)."""
        return self.model.specs[task]

    def predict(self, task: str, table: Table, batch_size: int = 128, progress: bool = False) -> SplitPredictions:
        """Predictions for every row of ``table`` (values, and class probabilities for a classification task)."""
        spec = self.spec(task)
        split = encode_table(table, spec.text_columns, self.tokenizer)
        return predict_split(
            self.model, spec, split, self.special, self.max_length, self.device, batch_size, "fp32", progress
        )


def load_predictor(folder: Path, device: torch.device, tokenizers: dict[str, object] | None = None) -> Predictor:
    """The model saved in ``folder`` (a :class:`DataError` naming what is missing); ``tokenizers`` caches
    tokenizers by name across members."""
    saved_heads([folder])
    meta = saved_meta(folder)
    name = meta.get("tokenizer") or DEFAULT_TOKENIZER
    tokenizers = {} if tokenizers is None else tokenizers
    if name not in tokenizers:
        try:
            tokenizers[name] = load_tokenizer(name)
        except (OSError, ValueError, ImportError):
            raise DataError.at(folder / "mtbert.json", None, "tokenizer", problem=f"cannot load {name!r}") from None
    tokenizer = tokenizers[name]
    special = SpecialTokens(tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    model = load_model(folder).to(device).eval()
    return Predictor(folder, model, tokenizer, special, int(meta.get("max_length") or DEFAULT_MAX_LENGTH), device)


def saved_heads(folders: list[Path]) -> dict[Path, dict[str, TaskSpec]]:
    """Each model folder's tasks as its heads were trained, read from its ``mtbert.json`` without loading weights
    (a :class:`DataError` naming a folder that is not a whole saved model)."""
    for folder in folders:
        if not folder.is_dir():
            raise DataError.at(folder, problem="model folder not found")
    return {folder: saved_specs(folder) for folder in folders}


def pick_task(heads: dict[Path, dict[str, TaskSpec]], task: str | None) -> str:
    """``task``, if every model predicts it; without ``task``, the one task every model has (a fine-tuned model has
    one; the multi-task model needs ``--task``)."""
    for folder, specs in heads.items():
        if task is not None and task not in specs:
            raise DataError.at(folder, problem=f"no head for task {task!r} (it predicts {', '.join(specs)})")
    if task is not None:
        return task
    first, *_ = heads.values()
    shared = [t for t in first if all(t in specs for specs in heads.values())]
    if len(shared) != 1:
        where = ", ".join(str(folder) for folder in heads)
        found = ", ".join(shared) or "no task in common"
        raise DataError(f"{where}: predicts {found}; choose one with --task")
    return shared[0]


def member_spec(heads: dict[Path, dict[str, TaskSpec]], task: str) -> TaskSpec:
    """The task's spec of the first model, once every model's head for ``task`` makes the same kind of prediction
    (the same classes, or all scores), so that their predictions can be combined."""
    (first, spec), *others = ((folder, specs[task]) for folder, specs in heads.items())
    for folder, other in others:
        if other.classes != spec.classes:
            kinds = [f"{s.classes} classes" if s.classes else "scores" for s in (spec, other)]
            raise DataError.at(folder, problem=f"its {task} head predicts {kinds[1]}, {first}'s {kinds[0]}")
    return spec


def sentences_table(spec: TaskSpec, sentences: list[str]) -> Table:
    """One row made of command-line ``sentences``: as many as the task has text columns, none empty."""
    if len(sentences) != len(spec.text_columns):
        wanted = f"{len(spec.text_columns)} sentence{'s' if len(spec.text_columns) > 1 else ''}"
        raise DataError(f"{COMMAND_LINE}: task {spec.name} takes {wanted}, got {len(sentences)}")
    texts = {column: [s.strip()] for column, s in zip(spec.text_columns, sentences, strict=True)}
    empty = [column for column, (text,) in texts.items() if not text]
    if empty:
        raise DataError(f"{COMMAND_LINE}: {empty[0]}: empty sentence")
    return Table(path=Path(COMMAND_LINE), ids=["1"], texts=texts, labels=None, skipped=[])


def read_input(path: Path, spec: TaskSpec) -> Table:
    """A CS224N file of ``spec``'s task (label column optional, as in test files); any malformed row is an error
    naming its line."""
    label = spec.label if spec.label.column in header_columns(path) else None
    return read_table(path, spec.text_columns, label, on_malformed="error")


def check_rule(spec: TaskSpec, rule: str) -> None:
    if rule not in spec.rules:
        raise DataError(f"--rule: {rule!r} is not a rule of task {spec.name}; allowed: {', '.join(spec.rules)}")


def combine_members(spec: TaskSpec, members: list[SplitPredictions], rule: str) -> SplitPredictions:
    """Members' predictions combined by ``rule`` (one of the task's rules, as in the ensemble stage); for a
    classification task also the members' mean class probabilities."""
    check_rule(spec, rule)
    values = np.stack([m.values for m in members])
    probabilities = None if spec.classes == 0 else np.stack([m.probabilities for m in members])
    combined = RULES[rule](values, probabilities)
    return SplitPredictions(combined, None if probabilities is None else probabilities.mean(axis=0))


def describe(spec: TaskSpec, result: SplitPredictions, row: int = 0) -> list[str]:
    """Row ``row`` for people: the prediction (with its class name) and each class probability."""
    value = result.values[row]
    if not spec.classes:
        return [f"{spec.name}: {value:.4f} (similarity, {spec.label.low:g} to {spec.label.high:g})"]
    names = spec.class_names or tuple(str(k) for k in range(spec.classes))
    lines = [f"{spec.name}: {int(value)} ({names[int(value)]})"]
    width = max(len(n) for n in names)
    assert result.probabilities is not None
    lines += [f"  p({name:<{width}}) = {p:.4f}" for name, p in zip(names, result.probabilities[row], strict=True)]
    return lines
