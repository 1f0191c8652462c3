"""mtbert.predictor: what a saved model records for inference, and the defaults for folders that predate it."""

from __future__ import annotations

import json

import torch
from conftest import tiny_config

from mtbert.model import build_model
from mtbert.predictor import DEFAULT_MAX_LENGTH, load_predictor, sentences_table


def test_a_saved_model_records_its_tokenizer_and_length_and_older_folders_get_the_defaults(
    prepared, tiny_model_dir, tmp_path
):
    cfg = tiny_config(prepared, tiny_model_dir)
    model = build_model(cfg.model, cfg.task_specs(["sts"]), seed=0)
    model.save(tmp_path / "new", str(tiny_model_dir), 32)
    new = load_predictor(tmp_path / "new", torch.device("cpu"))
    assert (new.max_length, new.tokenizer.name_or_path) == (32, str(tiny_model_dir))

    model.save(tmp_path / "old")
    meta_file = tmp_path / "old" / "mtbert.json"
    meta = json.loads(meta_file.read_text())
    assert meta["tokenizer"] is None and meta["max_length"] is None
    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k not in ("tokenizer", "max_length")}))
    old = load_predictor(tmp_path / "old", torch.device("cpu"))
    assert old.max_length == DEFAULT_MAX_LENGTH == 128  # params.yaml's model.max_length
    table = sentences_table(old.spec("sts"), ["a man plays", "a man is playing"])
    torch.testing.assert_close(  # the same tokenizer (the embedded one) and no truncation at this length
        torch.tensor(old.predict("sts", table).values), torch.tensor(new.predict("sts", table).values)
    )
