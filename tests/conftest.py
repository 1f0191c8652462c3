"""Shared fixtures: a tiny randomly initialised BERT (with the embedded tokenizer) and tiny CS224N-format data."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """The tests test this checkout: stop at once if ``mtbert`` comes from another one (a venv made elsewhere)."""
    import mtbert.config

    where = Path(mtbert.config.__file__).resolve().parent
    if not where.is_relative_to(ROOT / "src"):
        raise pytest.UsageError(f"mtbert is imported from {where}, not {ROOT / 'src'} (run pytest in this checkout)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``make mutate`` (mutmut sets MUTANT_UNDER_TEST), run the fastest tests first: mutmut passes a mutant's
    tests as a set, in no order, and stops at the first failure, so a mutant that a quick test catches then costs that
    test and not the slowest one. Durations are mutmut's own, from its clean run (``mutants/mutmut-stats.json``)."""
    stats = Path("mutmut-stats.json")
    if "MUTANT_UNDER_TEST" not in os.environ or not stats.is_file():
        return
    durations = json.loads(stats.read_text(encoding="utf-8")).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))


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

    from mtbert.pretrained import resolve_model_name

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


@pytest.fixture(scope="session")
def prepared(tmp_path_factory, tiny_raw_dir, tiny_model_dir) -> Path:
    """The tiny data of every task, prepared with the tiny model's tokenizer."""
    from _tasks import TASKS
    from transformers import AutoTokenizer

    from mtbert.prepare import prepare

    folder = tmp_path_factory.mktemp("prepared")
    prepare(list(TASKS.values()), tiny_raw_dir, folder, AutoTokenizer.from_pretrained(tiny_model_dir))
    return folder


def repo_params() -> dict:
    """A fresh copy of the repository's params.yaml (its structure; tests set the values they rely on)."""
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def tiny_config(prepared: Path, model_dir: Path, **sections: dict):
    """The repository's params on the tiny model and data, on the CPU, with short runs; ``sections`` update them,
    e.g. ``train={"grad": "pcgrad"}``."""
    from mtbert.config import config_from_dict

    data = repo_params()
    data["data"].update(prepared_dir=str(prepared), raw_dir=str(prepared))  # raw: any folder, the data is prepared
    data["model"].update(name=str(model_dir), max_length=32, pal_heads=2)
    short = {
        "epochs": 2,
        "steps_per_epoch": 3,
        "batch_size": 4,
        "checkpoint_every": 2,
        "device": "cpu",
        "freeze_layers": 0,
    }
    data["train"].update(short, lr=1e-3, seed=0, task_ratio={}, multipliers={}, loss_weights={})
    data["finetune"].update(short, task_steps={})
    data["predict"].update(device="cpu")
    for section, changes in sections.items():
        if isinstance(data.get(section), dict):
            data[section].update(changes)
        else:
            data[section] = changes
    return config_from_dict(data)


@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory, tiny_raw_dir, tiny_model_dir):
    """The whole pipeline on the tiny model and data, reproduced once with ``dvc repro``: (project, its output).
    Read-only: a test that changes it works on ``dvc_project.copy_project``."""
    import sys

    from dvc_project import make_project, run, tiny_params

    project = make_project(tmp_path_factory.mktemp("project"), tiny_params(tiny_raw_dir, tiny_model_dir))
    return project, run([sys.executable, "-m", "dvc", "repro"], project)
