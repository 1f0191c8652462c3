"""Shared fixtures: a tiny randomly initialised BERT (with the embedded tokenizer) and tiny CS224N-format data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "good",
    "bad",
    "movie",
    "plot",
    "great",
    "awful",
    "film",
    "fun",
    "dull",
    "story",
    "how",
    "what",
    "why",
    "is",
    "the",
    "a",
    "of",
    "best",
    "worst",
    "who",
    "can",
    "I",
]


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))


def write_cs224n(folder: Path, n: int = 30, seed: int = 0) -> Path:
    """All nine files in the CS224N format, ``n`` rows each, plus one broken-quoting row in quora-train."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        "ids-sst": (["sentence"], "sentiment", lambda: str(rng.randint(0, 4))),
        "quora": (["sentence1", "sentence2"], "is_duplicate", lambda: f"{rng.randint(0, 1)}.0"),
        "sts": (["sentence1", "sentence2"], "similarity", lambda: f"{rng.uniform(0, 5):.1f}"),
    }
    counter = 0
    for stem, (columns, label, make_label) in specs.items():
        for split in ("train", "dev", "test-student"):
            header = ["", "id", *columns] + ([label] if split != "test-student" else [])
            lines = ["\t".join(header)]
            for i in range(n):
                counter += 1
                row = [str(i), f"{counter:025x}", *(_sentence(rng) for _ in columns)]
                lines.append("\t".join(row + ([make_label()] if split != "test-student" else [])))
            if stem == "quora" and split == "train":
                counter += 1
                lines.insert(5, f'{n}\t{counter:025x}\thow is the plot\t"""why is it dull?"\t')
            (folder / f"{stem}-{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random BERT saved with the embedded model's tokenizer: builds in about a second."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from mtbert.model import resolve_model_name

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_name("embedded"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_raw_dir(tmp_path_factory) -> Path:
    return write_cs224n(tmp_path_factory.mktemp("raw"))
