"""Trained models in formats other tools load: a Hugging Face ``transformers`` folder, a sentence-transformers
folder and an ONNX graph (``mtbert export``).

Every format keeps the pipeline's exact inference: the encoder's weights as trained, the documented pooling
(:func:`mtbert.model.pool`) and each task's head, so that loading the export and following its model card
(:mod:`mtbert.modelcard`) reproduces mtbert's predictions. A whole export is written into a temporary folder beside
``out`` and renamed into place: ``out`` holds the old export or the new one, never half of one.

A model with projected attention layers (PALs) runs task-specific code inside every encoder layer: it is not a plain
``BertModel``, so only the ONNX export, which traces the whole computation, takes it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from mtbert.errors import DataError
from mtbert.model import MultiTaskModel, saved_meta
from mtbert.modelcard import model_card
from mtbert.predictor import Predictor, load_predictor, saved_heads
from mtbert.tasks import TaskSpec

FORMATS = ("hf", "sentence-transformers", "onnx")
HEADS_FILE = "heads.safetensors"
HEADS_SPEC = "mtbert_heads.json"
ONNX_FILE = "model.onnx"


def check_export(meta: dict, specs: dict[str, TaskSpec], folder: Path, fmt: str, task: str | None) -> str | None:
    """The task the export is for (None: every task of the model, the ``hf`` format), once ``fmt`` can take this
    saved model (its ``mtbert.json`` as ``meta``, its tasks as ``specs``); a :class:`DataError` (one line) if not."""
    if fmt not in FORMATS:
        raise DataError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if task is not None and task not in specs:
        raise DataError.at(folder, problem=f"no head for task {task!r} (it predicts {', '.join(specs)})")
    if meta.get("pals", 0) and fmt != "onnx":
        raise DataError.at(
            folder / "mtbert.json",
            None,
            "pals",
            problem=f"a model with PALs is not a plain BertModel; export it with --format onnx, not {fmt}",
        )
    if fmt == "hf":
        return task
    candidates = [t for t, s in specs.items() if fmt == "onnx" or s.encoding.startswith("bi-")]
    if fmt == "sentence-transformers" and task is not None and task not in candidates:
        raise DataError(f"--task: {task} is {specs[task].encoding}-encoded; sentence-transformers takes a bi-encoder")
    if task is not None:
        return task
    if len(candidates) != 1:
        kind = "bi-encoder tasks" if fmt == "sentence-transformers" else "tasks"
        raise DataError.at(folder, problem=f"{kind}: {', '.join(candidates) or 'none'}; choose one with --task")
    return candidates[0]


def check_output(out: Path, model_folder: Path, force: bool) -> None:
    """``out`` may receive an export: a new name in an existing folder (or, with ``force``, an existing export to
    replace), never the model folder, a folder inside it or one that holds it."""
    model, target = model_folder.resolve(), out.resolve()
    if target == model or target.is_relative_to(model) or model.is_relative_to(target):
        raise DataError(f"--output: {out} holds or is inside the model folder {model_folder}; choose another")
    if not target.parent.is_dir():
        raise DataError(f"--output: the folder {out.parent} does not exist (create it first)")
    if out.exists() and not force:
        raise DataError(f"--output: {out} exists; add --force to replace it")


def write_folder_atomic(out: Path, write: Callable[[Path], None]) -> None:
    """``write(folder)`` into a fresh temporary folder beside ``out``, then that folder renamed to ``out``
    (replacing an old ``out``); on any error nothing of the new export remains."""
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write(tmp)
        if out.is_dir() and not out.is_symlink():
            shutil.rmtree(out)
        elif out.exists() or out.is_symlink():
            out.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def head_spec(model: MultiTaskModel, tasks: list[str], max_length: int) -> dict:
    """What the exported heads need besides their weights: pooling, input length and per task its encoding, head
    kind and how its output becomes a prediction (``mtbert_heads.json``)."""
    out: dict = {"pooling": model.pooling, "max_length": max_length, "tasks": {}}
    for task in tasks:
        spec, head = model.specs[task], model.heads[task]
        entry = {"encoding": spec.encoding, "head": type(head).__name__, "outputs": spec.n_out, "classes": spec.classes}
        if spec.class_names:
            entry["class_names"] = list(spec.class_names)
        if hasattr(head, "scale"):
            entry.update(scale=head.scale, clip_negative=head.clip_negative, learnable=head.affine is not None)
        if spec.classes == 0:
            entry.update(low=spec.label.low, high=spec.label.high)
        out["tasks"][task] = entry
    return out


def _heads_state(model: MultiTaskModel, tasks: list[str]) -> dict[str, Tensor]:
    return {f"{t}.{k}": v.detach().contiguous() for t in tasks for k, v in model.heads[t].state_dict().items()}


def write_hf(predictor: Predictor, folder: Path, tasks: list[str]) -> None:
    """The encoder as a ``transformers`` folder (config, safetensors weights, tokenizer files), the heads of
    ``tasks`` in :data:`HEADS_FILE` (``<task>.<parameter>``) and their description in :data:`HEADS_SPEC`."""
    model = predictor.model
    model.encoder.save_pretrained(folder, safe_serialization=True)
    predictor.tokenizer.save_pretrained(folder)
    save_file(_heads_state(model, tasks), str(folder / HEADS_FILE), metadata={"format": "pt"})
    spec = head_spec(model, tasks, predictor.max_length)
    (folder / HEADS_SPEC).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")


def write_sentence_transformers(predictor: Predictor, folder: Path, tasks: list[str]) -> None:
    """A folder ``SentenceTransformer(folder)`` loads: the encoder, the model's pooling and its input length; the
    task's head beside it as in :func:`write_hf` (the cosine relation is in the model card)."""
    from sentence_transformers import SentenceTransformer, models

    with tempfile.TemporaryDirectory() as hf:
        write_hf(predictor, Path(hf), tasks)
        encoder = models.Transformer(hf, max_seq_length=predictor.max_length)
        mode = {"mean": "mean", "cls": "cls"}[predictor.model.pooling]
        pooling = models.Pooling(encoder.get_word_embedding_dimension(), pooling_mode=mode)
        SentenceTransformer(modules=[encoder, pooling], device="cpu").save(str(folder))
        for name in (HEADS_FILE, HEADS_SPEC):
            shutil.copyfile(Path(hf) / name, folder / name)


class TaskGraph(nn.Module):
    """One single- or cross-encoded task of a model as a function of its token tensors, for tracing; returns the
    head's output (logits or score) before decoding."""

    def __init__(self, model: MultiTaskModel, task: str) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.model(self.task, inputs)


class PairGraph(TaskGraph):
    """A bi-encoded task: each sentence of the pair has its own tensors (``_a``, ``_b``) and its own length."""

    def forward(  # type: ignore[override]
        self,
        input_ids_a: Tensor,
        attention_mask_a: Tensor,
        token_type_ids_a: Tensor,
        input_ids_b: Tensor,
        attention_mask_b: Tensor,
        token_type_ids_b: Tensor,
    ) -> Tensor:
        names = ("input_ids", "attention_mask", "token_type_ids")
        a = dict(zip(names, (input_ids_a, attention_mask_a, token_type_ids_a), strict=True))
        b = dict(zip(names, (input_ids_b, attention_mask_b, token_type_ids_b), strict=True))
        return self.model.heads[self.task](self.model.embed(self.task, a), self.model.embed(self.task, b))


def onnx_input_names(spec: TaskSpec) -> list[str]:
    names = ["input_ids", "attention_mask", "token_type_ids"]
    return [f"{n}_{side}" for side in "ab" for n in names] if spec.encoding.startswith("bi-") else names


def write_onnx(predictor: Predictor, folder: Path, tasks: list[str]) -> None:
    """The one task's encoder and head as one ONNX graph (:data:`ONNX_FILE`; dynamic batch and sequence axes, output
    ``output``) beside the tokenizer files and :data:`HEADS_SPEC`."""
    (task,) = tasks
    model = predictor.model.eval()
    names = onnx_input_names(model.specs[task])
    sides = [n[-2:] if n.endswith(("_a", "_b")) else "" for n in names]  # a pair's sentences: their own lengths
    example = tuple(
        (torch.ones if "mask" in n else torch.zeros)(2, 5 + (side == "_b"), dtype=torch.long)
        for n, side in zip(names, sides, strict=True)
    )
    batch, lengths = torch.export.Dim("batch"), {side: torch.export.Dim(f"sequence{side}") for side in set(sides)}
    shapes = {n: {0: batch, 1: lengths[side]} for n, side in zip(names, sides, strict=True)}
    graph = (PairGraph if model.specs[task].encoding.startswith("bi-") else TaskGraph)(model, task).eval()
    with torch.no_grad():
        torch.onnx.export(
            graph,
            example,
            str(folder / ONNX_FILE),
            input_names=names,
            output_names=["output"],
            dynamic_shapes=shapes,
            dynamo=True,
            external_data=False,
        )
    predictor.tokenizer.save_pretrained(folder)
    spec = head_spec(model, [task], predictor.max_length)
    (folder / HEADS_SPEC).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")


WRITERS: dict[str, Callable[[Predictor, Path, list[str]], None]] = {
    "hf": write_hf,
    "sentence-transformers": write_sentence_transformers,
    "onnx": write_onnx,
}
NEEDS = {"hf": (), "sentence-transformers": ("sentence_transformers",), "onnx": ("onnx", "onnxscript")}


def export_model(
    folder: Path,
    fmt: str,
    out: Path,
    task: str | None = None,
    force: bool = False,
    metrics: dict | None = None,
    params_text: str | None = None,
) -> list[str]:
    """Export the saved model ``folder`` as ``fmt`` into ``out`` with its model card (``metrics``: the run's dev
    metrics file, ``params_text``: its params file); every check runs before the model loads. Returns the tasks
    exported."""
    import importlib.util

    specs = saved_heads([folder])[folder]
    chosen = check_export(saved_meta(folder), specs, folder, fmt, task)
    check_output(out, folder, force)
    missing = [m for m in NEEDS[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        raise DataError(f"--format {fmt}: needs the package {missing[0]} (pip install -r requirements.lock)")
    tasks = list(specs) if chosen is None else [chosen]
    names = [f"{t}_{specs[t].metric_name}" for t in tasks] + (["overall"] if len(tasks) == len(specs) else [])
    dev = {k: float(metrics[k]) for k in names if k in (metrics or {})}
    predictor = load_predictor(folder, torch.device("cpu"))

    def write(tmp: Path) -> None:
        WRITERS[fmt](predictor, tmp, tasks)
        heads = json.loads((tmp / HEADS_SPEC).read_text(encoding="utf-8"))
        card = model_card(fmt, str(out), heads, str(folder), dev or None, params_text)
        (tmp / "README.md").write_text(card, encoding="utf-8")

    write_folder_atomic(out, write)
    return tasks
