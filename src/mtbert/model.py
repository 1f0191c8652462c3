"""The multi-task model: one shared encoder, one head per task, encoding chosen by each task."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel

from mtbert._typed import build
from mtbert.config import ModelConfig
from mtbert.data.encoded import Batch
from mtbert.errors import ConfigError, DataError
from mtbert.files import write_atomic, write_text_atomic
from mtbert.pals import ProjectedAttentionLayers
from mtbert.pretrained import load_encoder
from mtbert.task_defs import TaskDef
from mtbert.tasks import TaskSpec, init_head


def pool(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def _depth(name: str, layers: int) -> int:
    """0 for the embeddings, i + 1 for encoder layer i, ``layers + 1`` for anything above (e.g. a pooler)."""
    parts = name.split(".")
    if "embeddings" in parts:
        return 0
    for i, part in enumerate(parts[:-1]):
        if part == "layer" and parts[i + 1].isdigit():
            return int(parts[i + 1]) + 1
    return layers + 1


class MultiTaskModel(nn.Module):
    """Shared encoder + ``heads[task]``; ``forward(task, inputs)`` returns that task's head output.

    ``pals > 0`` adds task-specific projected attention layers of that size beside every encoder layer
    (:mod:`mtbert.pals`); only the active task's PAL runs. ``encoder_frozen`` runs the encoder (and the PALs)
    without gradient: only the heads train, and the expensive backward through the encoder is skipped.
    """

    def __init__(
        self,
        encoder: nn.Module,
        tasks: list[TaskSpec],
        pooling: str,
        dropout: float,
        pals: int = 0,
        pal_heads: int = 12,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = dropout
        self.specs = {t.name: t for t in tasks}
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({t.name: t.make_head(hidden, dropout) for t in tasks})
        self.pal_size, self.pal_heads = pals, pal_heads
        self.pals = None
        if pals:
            layers = encoder.config.num_hidden_layers
            self.pals = ProjectedAttentionLayers(list(self.specs), hidden, layers, pals, pal_heads, dropout)
            self.pals.attach(encoder)
        self.encoder_frozen = False

    def embed(self, task: str, inputs: dict[str, Tensor]) -> Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.encoder_frozen):
            with self.pals.active(task, inputs["attention_mask"]) if self.pals else contextlib.nullcontext():
                hidden = self.encoder(**inputs).last_hidden_state
            return pool(hidden, inputs["attention_mask"], self.pooling)

    def forward(self, task: str, inputs: dict[str, Tensor]) -> Tensor:
        pooled = self.embed(task, inputs)
        if self.specs[task].encoding.startswith("bi-"):
            u, v = pooled.chunk(2)
            return self.heads[task](u, v)
        return self.heads[task](pooled)

    def task_loss(self, task: str, batch: Batch) -> Tensor:
        """The loss of ``task`` on ``batch``: its head's output (in fp32) against the labels, mean over the rows."""
        return self.specs[task].loss(self(task, batch.inputs).float(), batch.labels)

    def param_groups(
        self, lr: float, head_lr: float, pal_lr: float, weight_decay: float, layer_decay: float = 1.0
    ) -> list[dict]:
        """Optimizer groups, one learning rate per module kind (encoder, heads, PALs); as BERT does, no weight decay
        on biases and LayerNorm weights (the encoder's and the PALs'), nor on the heads.

        ``layer_decay < 1``: layer-wise learning-rate decay (Howard & Ruder 2018; Sun et al. 2019, "How to fine-tune
        BERT"): the top encoder layer trains at ``lr``, each layer below at ``layer_decay`` times the one above, the
        embeddings at ``layer_decay ** layers`` × ``lr``.
        """
        layers = self.encoder.config.num_hidden_layers
        encoder: dict[tuple[int, bool], list[nn.Parameter]] = {}
        for name, p in self.shared_parameters():
            decays = not (p.ndim < 2 or "LayerNorm" in name)
            encoder.setdefault((_depth(name, layers), decays), []).append(p)
        groups = [
            {
                "params": params,
                "lr": lr * layer_decay ** max(layers - depth, 0),
                "weight_decay": weight_decay if decays else 0.0,
            }
            for (depth, decays), params in encoder.items()
        ]
        pal_decay = [p for p in self.pal_parameters() if p.ndim >= 2]
        pal_no_decay = [p for p in self.pal_parameters() if p.ndim < 2]
        groups += [
            {"params": self.head_parameters(), "lr": head_lr, "weight_decay": 0.0},
            {"params": pal_decay, "lr": pal_lr, "weight_decay": weight_decay},
            {"params": pal_no_decay, "lr": pal_lr, "weight_decay": 0.0},
        ]
        return [g for g in groups if g["params"]]

    def freeze_lower_layers(self, layers: int) -> None:
        """Keep the embeddings and the lowest ``layers`` encoder layers as they are (``layers > 0``): no gradient, so
        the backward stops above them (Lee et al. 2019, "What would Elsa do? Freezing layers during transformer
        fine-tuning")."""
        if layers:
            self.encoder.embeddings.requires_grad_(False)
            for layer in self.encoder.encoder.layer[:layers]:
                layer.requires_grad_(False)

    def shared_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(f"encoder.{n}", p) for n, p in self.encoder.named_parameters() if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.heads.parameters() if p.requires_grad]

    def pal_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.pals.parameters() if p.requires_grad] if self.pals else []

    def task_parameters(self, task: str) -> list[nn.Parameter]:
        """The trainable parameters only ``task`` uses: its head and its PAL."""
        pals = [] if self.pals is None else [m[task] for m in (self.pals.encode, self.pals.decode, self.pals.attention)]
        return [p for module in [self.heads[task], *pals] for p in module.parameters() if p.requires_grad]

    def save(self, folder: Path, tokenizer: str | None = None, max_length: int | None = None) -> None:
        """Weights, encoder config and ``mtbert.json`` (the tasks' definitions and heads, pooling, …); ``tokenizer``
        (the ``model.name`` it was trained with) and ``max_length`` are recorded for inference outside the pipeline
        (``mtbert predict``, ``mtbert export``), which needs no ``params.yaml``."""
        folder.mkdir(parents=True, exist_ok=True)
        # contiguous() copies tied/shared views so safetensors accepts them.
        weights = {k: v.contiguous() for k, v in self.state_dict().items()}
        write_atomic(folder / "model.safetensors", lambda tmp: save_file(weights, str(tmp)))
        write_atomic(folder / "encoder_config.json", lambda tmp: self.encoder.config.to_json_file(str(tmp)))
        meta = {
            "tasks": {name: spec.options() for name, spec in self.specs.items()},
            "task_defs": {name: spec.definition.as_dict() for name, spec in self.specs.items()},
            "pooling": self.pooling,
            "dropout": self.dropout,
            "pals": self.pal_size,
            "pal_heads": self.pal_heads,
            "tokenizer": tokenizer,
            "max_length": max_length,
        }
        write_text_atomic(folder / "mtbert.json", json.dumps(meta, indent=2) + "\n")


def saved_meta(folder: Path) -> dict:
    """The ``mtbert.json`` of a saved model (tasks, their definitions and heads, pooling, tokenizer, max_length); a
    :class:`DataError` naming the file if the folder does not hold a whole model."""
    for name in ("mtbert.json", "encoder_config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise DataError.at(folder / name, problem="model file not found (did the stage that trains it run?)")
    return json.loads((folder / "mtbert.json").read_text(encoding="utf-8"))


def saved_specs(folder: Path) -> dict[str, TaskSpec]:
    """The tasks of the model saved in ``folder``, by name, rebuilt from its ``mtbert.json`` alone: each task's
    definition with its head as trained (encoding, loss, …). A model saved before definitions were recorded gets a
    :class:`DataError` naming the file."""
    meta, where = saved_meta(folder), folder / "mtbert.json"
    if "task_defs" not in meta:
        raise DataError.at(
            where, problem="no task_defs (saved before models recorded their tasks); retrain or re-save the model"
        )
    options = meta["tasks"] if isinstance(meta["tasks"], dict) else {name: {} for name in meta["tasks"]}
    specs = {}
    for name, o in options.items():
        try:
            definition = build(TaskDef, meta["task_defs"].get(name), f"task_defs.{name}")
            specs[name] = TaskSpec(name, definition).configure(**{**o, "mlp": tuple(o.get("mlp", ()))})
        except (ConfigError, ValueError) as err:
            raise DataError.at(where, problem=str(err)) from None
    return specs


def load_model(folder: Path) -> MultiTaskModel:
    """Rebuild a saved model from its ``mtbert.json``, config and safetensors weights (no pickle, no remote code)."""
    meta = saved_meta(folder)
    config = AutoConfig.from_pretrained(str(folder / "encoder_config.json"))
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    specs = list(saved_specs(folder).values())
    model = MultiTaskModel(
        encoder, specs, meta["pooling"], meta["dropout"], meta.get("pals", 0), meta.get("pal_heads", 12)
    )
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model


def build_model(cfg: ModelConfig, tasks: list[TaskSpec], seed: int) -> MultiTaskModel:
    """The pretrained encoder of ``cfg.name`` with fresh heads (and PALs) for ``tasks``; ``seed`` makes their
    initialisation reproducible."""
    torch.manual_seed(seed)
    encoder = load_encoder(cfg.name)
    if cfg.freeze_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    return MultiTaskModel(encoder, tasks, cfg.pooling, cfg.dropout, cfg.pals, cfg.pal_heads)


def for_finetuning(pretrained: MultiTaskModel, cfg: ModelConfig, spec: TaskSpec, seed: int) -> MultiTaskModel:
    """Stage 2's starting point: ``pretrained``'s encoder and ``spec``'s PAL, and a fresh head for ``spec``
    initialised from ``seed``. Weights are loaded, not files copied (DVC's cache may link files read-only)."""
    model = build_model(cfg, [spec], seed)
    model.encoder.load_state_dict(pretrained.encoder.state_dict())
    if model.pals is not None:
        model.pals.load_task(spec.name, pretrained.pals)
    init_head(model.heads[spec.name], torch.Generator().manual_seed(seed))
    return model
