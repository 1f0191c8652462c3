"""Token-id caches: tokenize once in ``prepare``, then only slice and pad.

A cache file ``<task>-<split>.safetensors`` holds, for each text column, the token ids of every row
(without special tokens, untruncated) as one flat int32 tensor plus int64 offsets, the labels as float32,
and the row ids as JSON metadata. Truncation and special tokens are applied when batches are built, so the
same cache serves single, cross- and bi-encoding and any ``max_length``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from torch import Tensor

from mtbert.data.reader import Table
from mtbert.files import write_atomic, write_text_atomic


@dataclass(frozen=True)
class SpecialTokens:
    cls: int
    sep: int
    pad: int


@dataclass(frozen=True)
class EncodedSplit:
    """Token ids of one task split, ready for batching."""

    ids: list[str]
    columns: list[tuple[np.ndarray, np.ndarray]]  # per text column: (flat token ids, offsets [N + 1])
    labels: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ids)

    def tokens(self, column: int, row: int) -> np.ndarray:
        flat, offsets = self.columns[column]
        return flat[offsets[row] : offsets[row + 1]]

    def lengths(self) -> np.ndarray:
        """Total tokens per row over all columns (used to sort rows for fast inference)."""
        return sum(np.diff(offsets) for _, offsets in self.columns)


def encode_table(table: Table, columns: tuple[str, ...], tokenizer) -> EncodedSplit:
    """Tokenize every text column of ``table`` (a fast HF tokenizer; no special tokens, no truncation)."""
    encoded = []
    for column in columns:
        rows = tokenizer(table.texts[column], add_special_tokens=False)["input_ids"]
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.fromiter((t for r in rows for t in r), dtype=np.int32, count=int(offsets[-1]))
        encoded.append((flat, offsets))
    labels = None if table.labels is None else np.asarray(table.labels, dtype=np.float32)
    return EncodedSplit(ids=list(table.ids), columns=encoded, labels=labels)


def save_split(split: EncodedSplit, path: Path) -> None:
    tensors = {}
    for i, (flat, offsets) in enumerate(split.columns):
        tensors[f"col{i}.ids"] = flat
        tensors[f"col{i}.offsets"] = offsets
    if split.labels is not None:
        tensors["labels"] = split.labels
    path.parent.mkdir(parents=True, exist_ok=True)
    # One metadata entry: safetensors keeps metadata in a hash map whose order changes from run to run, and the
    # bytes of this file must not (DVC hashes them; the same input must give the same cache).
    meta = json.dumps({"ids": split.ids, "n_columns": len(split.columns)})
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata={"split": meta}))


def load_split(path: Path) -> EncodedSplit:
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["split"])
    tensors = load_file(str(path))
    columns = [(tensors[f"col{i}.ids"], tensors[f"col{i}.offsets"]) for i in range(meta["n_columns"])]
    return EncodedSplit(ids=meta["ids"], columns=columns, labels=tensors.get("labels"))


def save_special_tokens(special: SpecialTokens, path: Path) -> None:
    write_text_atomic(path, json.dumps(special.__dict__, indent=2) + "\n")


def load_special_tokens(path: Path) -> SpecialTokens:
    return SpecialTokens(**json.loads(path.read_text(encoding="utf-8")))


def _pad(seqs: list[list[int]], types: list[list[int]], pad: int) -> dict[str, Tensor]:
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    token_type_ids = torch.zeros((len(seqs), width), dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, (seq, typ) in enumerate(zip(seqs, types, strict=True)):
        input_ids[row, : len(seq)] = torch.tensor(seq)
        token_type_ids[row, : len(seq)] = torch.tensor(typ)
        attention_mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def _truncate_pair(a: np.ndarray, b: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Longest-first truncation (as HF tokenizers do) so that ``len(a) + len(b) <= budget``."""
    la, lb = len(a), len(b)
    while la + lb > budget:
        # On a tie the originally shorter sentence gives up the token, as the HF tokenizers do.
        if la > lb or (la == lb and len(a) <= len(b)):
            la -= 1
        else:
            lb -= 1
    return a[:la], b[:lb]


@dataclass(frozen=True)
class Batch:
    inputs: dict[str, Tensor]
    labels: Tensor | None
    size: int  # examples (pairs count once)

    def to(self, device: torch.device) -> Batch:
        labels = None if self.labels is None else self.labels.to(device, non_blocking=True)
        inputs = {k: v.to(device, non_blocking=True) for k, v in self.inputs.items()}
        return Batch(inputs, labels, self.size)


def collate(split: EncodedSplit, rows: np.ndarray, encoding: str, special: SpecialTokens, max_length: int) -> Batch:
    """Build one batch padded to its longest member.

    ``single``: ``[CLS] a [SEP]``. ``cross``: ``[CLS] a [SEP] b [SEP]`` with token types 0/1.
    ``bi``: the ``a`` sentences then the ``b`` sentences as one [2B, L] batch (one encoder pass).
    """
    cls, sep = [special.cls], [special.sep]
    seqs: list[list[int]] = []
    types: list[list[int]] = []
    if encoding == "cross":
        for r in rows:
            a, b = _truncate_pair(split.tokens(0, r), split.tokens(1, r), max_length - 3)
            first = cls + a.tolist() + sep
            second = b.tolist() + sep
            seqs.append(first + second)
            types.append([0] * len(first) + [1] * len(second))
    else:
        for column in range(1 if encoding == "single" else 2):
            for r in rows:
                seq = cls + split.tokens(column, r)[: max_length - 2].tolist() + sep
                seqs.append(seq)
                types.append([0] * len(seq))
    labels = None if split.labels is None else torch.from_numpy(split.labels[rows])
    return Batch(_pad(seqs, types, special.pad), labels, len(rows))
