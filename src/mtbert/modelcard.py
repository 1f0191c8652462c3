"""The model card (``README.md``) of an exported model: its tasks, the run's dev metrics and training params, and
code that reproduces mtbert's predictions from the exported files alone.

The code is generated from the export's ``mtbert_heads.json`` (:func:`mtbert.export.head_spec`), one function
``predict_<task>(...)`` per task returning ``(prediction, probabilities or None)``; the tests run it as written.
"""

from __future__ import annotations

import hashlib

import yaml

LIBRARY = {"hf": "transformers", "sentence-transformers": "sentence-transformers", "onnx": "onnx"}

_HEAD_CODE = '''

def mlp(x, prefix):
    """An MLP head: its Linear + GELU layers, then the output Linear (dropout is off at inference)."""
    i = 1
    while f"{prefix}.layers.{i}.weight" in heads:
        x = torch.nn.functional.gelu(x @ heads[f"{prefix}.layers.{i}.weight"].T + heads[f"{prefix}.layers.{i}.bias"])
        i += 3
    out = x @ heads[f"{prefix}.linear.weight"].T + heads[f"{prefix}.linear.bias"]
    return out.squeeze(-1) if out.shape[-1] == 1 else out
'''

_PREAMBLE = {
    "hf": '''import json

import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

folder = {folder!r}  # where this folder is
tokenizer = AutoTokenizer.from_pretrained(folder)
encoder = AutoModel.from_pretrained(folder, add_pooling_layer=False).eval()  # mtbert never uses a pooler
heads = load_file(f"{{folder}}/heads.safetensors")
spec = json.load(open(f"{{folder}}/mtbert_heads.json"))


def embed(*texts):
    """Pooled embeddings of a list of sentences (or, cross-encoded, of two lists taken as pairs)."""
    batch = tokenizer(*texts, padding=True, truncation=True, max_length=spec["max_length"], return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    if spec["pooling"] == "cls":
        return hidden[:, 0]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
''',
    "sentence-transformers": '''import json

import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

folder = {folder!r}  # where this folder is
model = SentenceTransformer(folder, device="cpu")
heads = load_file(f"{{folder}}/heads.safetensors")
spec = json.load(open(f"{{folder}}/mtbert_heads.json"))


def embed(sentences):
    """The sentence embeddings mtbert's bi-encoder head compares (the model's pooling, not normalised)."""
    return model.encode(list(sentences), convert_to_tensor=True)
''',
    "onnx": """import json

import numpy as np
import onnxruntime
import torch
from transformers import AutoTokenizer

folder = {folder!r}  # where this folder is
tokenizer = AutoTokenizer.from_pretrained(folder)
session = onnxruntime.InferenceSession(f"{{folder}}/model.onnx")
spec = json.load(open(f"{{folder}}/mtbert_heads.json"))


def tokens(*texts, side=""):
    batch = tokenizer(*texts, padding=True, truncation=True, max_length=spec["max_length"], return_tensors="np")
    names = ("input_ids", "attention_mask", "token_type_ids")
    return {{f"{{name}}{{side}}": batch[name].astype(np.int64) for name in names}}
""",
}


def _output_code(fmt: str, task: str, entry: dict) -> tuple[list[str], list[str]]:
    """The function's arguments and the lines that compute the head's output ``out``."""
    encoding = entry["encoding"]
    args = ["sentences"] if encoding == "single" else ["sentences1", "sentences2"]
    if fmt == "onnx":
        feed = (
            "tokens(sentences1, side='_a'), **tokens(sentences2, side='_b')"
            if encoding.startswith("bi-")
            else (f"tokens({', '.join(args)})")
        )
        return args, [f"out = torch.from_numpy(session.run(None, {{**{feed}}})[0])"]
    if encoding in ("single", "cross"):
        return args, [f"out = mlp(embed({', '.join(args)}), {task!r})"]
    lines = ["u, v = embed(sentences1), embed(sentences2)"]
    if encoding == "bi-concat":
        return args, [*lines, f"out = mlp(torch.cat([u, v, (u - v).abs()], dim=-1), '{task}.mlp')"]
    lines.append("cos = torch.nn.functional.cosine_similarity(u, v, dim=-1)")
    if entry["learnable"]:
        return args, [*lines, f"out = cos * heads['{task}.affine.weight'][0, 0] + heads['{task}.affine.bias'][0]"]
    clip = "cos.clamp(min=0)" if entry["clip_negative"] else "cos"
    return args, [*lines, f"out = {clip} * {entry['scale']!r}"]


def _decode_code(entry: dict) -> list[str]:
    if entry["classes"] == 0:
        return [f"return out.clamp({entry['low']!r}, {entry['high']!r}), None"]
    if entry["outputs"] == 1:  # one logit of the positive class
        return ["p = torch.sigmoid(out)", "return (out > 0).long(), torch.stack([1 - p, p], dim=-1)"]
    return ["return out.argmax(-1), torch.softmax(out, dim=-1)"]


def usage_code(fmt: str, folder: str, heads: dict) -> str:
    """Python that loads the export in ``folder`` and defines ``predict_<task>`` for each task of ``heads``."""
    code = _PREAMBLE[fmt].format(folder=folder) + ("" if fmt == "onnx" else _HEAD_CODE)
    for task, entry in heads["tasks"].items():
        args, lines = _output_code(fmt, task, entry)
        body = [*lines, *_decode_code(entry)]
        if fmt != "onnx":
            body = ["with torch.no_grad():", *(f"    {line}" for line in lines), *_decode_code(entry)]
        code += f"\n\ndef predict_{task}({', '.join(args)}):\n" + "".join(f"    {line}\n" for line in body)
    return code


def model_card(fmt: str, folder: str, heads: dict, source: str, metrics: dict | None, params_text: str | None) -> str:
    """The ``README.md`` of an export of the model folder ``source`` into ``folder``: ``metrics`` are the run's dev
    metrics (None: not recorded), ``params_text`` the text of the params file it was trained with."""
    tasks = ", ".join(heads["tasks"])
    front = {"library_name": LIBRARY[fmt], "tags": ["mtbert", "multi-task", *heads["tasks"]]}
    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "", f"# mtbert model: {tasks}", ""]
    lines += [
        f"Exported by `mtbert export --format {fmt}` from `{source}`.",
        "",
        "| task | input | head | prediction |",
    ]
    lines += ["|---|---|---|---|"]
    for task, entry in heads["tasks"].items():
        kind = "a score" if not entry["classes"] else f"one of {entry['classes']} classes"
        names = f" ({', '.join(entry['class_names'])})" if entry.get("class_names") else ""
        lines.append(f"| {task} | {entry['encoding']} | {entry['head']} | {kind}{names} |")
    lines += ["", "## Dev metrics of the run", ""]
    if metrics:
        lines += ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4f} |" for k, v in metrics.items())]
    else:
        lines.append("Not recorded (no metrics file was found beside the model, nor given with `--metrics`).")
    lines += ["", "## Training params", ""]
    if params_text is None:
        lines.append("Not recorded (no params file was found, nor given with `--params`).")
    else:
        digest = hashlib.sha256(params_text.encode("utf-8")).hexdigest()
        lines += [f"The params file's SHA-256: `{digest}`.", "", "```yaml", params_text.rstrip(), "```"]
    lines += ["", "## Use", "", f"Pooling `{heads['pooling']}`, at most {heads['max_length']} tokens per input."]
    for task, entry in heads["tasks"].items():
        if entry["head"] == "CosineHead" and not entry["learnable"]:
            clip = "max(0, cos)" if entry["clip_negative"] else "cos"
            lines += [
                f"{task}: the embeddings' cosine `cos` is mtbert's score divided by {entry['scale']} before the clip: "
                f"prediction = clamp({entry['scale']} · {clip}, {entry['low']}, {entry['high']})."
            ]
    lines += ["This code reproduces mtbert's predictions from this folder alone:", "", "```python"]
    lines += [usage_code(fmt, folder, heads).rstrip(), "```", "", "## Intended use and limits", "", limits(tasks), ""]
    return "\n".join(lines)


def limits(tasks: str) -> str:
    """The card's intended use and limits for a model of ``tasks`` (their names, comma-separated)."""
    return (
        f"Research use: comparing multi-task training methods on the tasks it was trained on ({tasks}). Its language "
        "and domains are those of its training files (mtbert's defaults, the CS224N tasks sst, para and sts: English "
        "movie-review sentences, Quora questions, news and caption pairs); a model fine-tuned for one task predicts "
        "only that task. The dev metrics above are on the tasks' dev files; they say nothing about other domains. The "
        "encoder inherits the biases of its pretrained model and training data."
    )
