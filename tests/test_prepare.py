"""Tests for mtbert.prepare: the prepare step's report and caches, and prepared data read back for training."""

from __future__ import annotations

import numpy as np
from _tasks import TASKS

from mtbert.prepare import load_prepared, load_special, load_training_data


def test_prepare_writes_every_task_and_split_and_reads_them_back(prepared, tiny_raw_dir):
    for task in TASKS:
        for split in ("train", "dev", "test"):
            data = load_prepared(prepared, task, split)
            assert len(data) == 30  # write_cs224n: 30 valid rows per file (quora-train's broken row skipped)
            assert (data.labels is None) == (split == "test")
    assert load_special(prepared).pad == 0


def test_training_data_batches_each_task_with_its_encoding(prepared):
    specs = [TASKS["sst"], TASKS["sts"]]  # sts: bi-cosine, two sentences per row
    data = load_training_data(prepared, specs, max_length=16)
    assert list(data.tasks) == ["sst", "sts"] and data.sizes() == {"sst": 30, "sts": 30}
    assert all(len(data.lengths()[t]) == 30 for t in data.tasks)
    rows = np.array([0, 3, 5])
    sst, sts = data.batch("sst", rows), data.batch("sts", rows)
    assert sst.inputs["input_ids"].shape[0] == 3 and sst.inputs["input_ids"].shape[1] <= 16
    assert sts.inputs["input_ids"].shape[0] == 6  # the two sentences of each pair, stacked
    assert np.allclose(sst.labels.numpy(), data.tasks["sst"].train.labels[rows])


def test_prepare_with_progress_bars_writes_the_same_bytes(prepared, tiny_raw_dir, tiny_model_dir, tmp_path, capsys):
    from transformers import AutoTokenizer

    from mtbert.prepare import prepare

    report = prepare(
        list(TASKS.values()), tiny_raw_dir, tmp_path, AutoTokenizer.from_pretrained(tiny_model_dir), progress=True
    )
    bars = capsys.readouterr().err
    assert "read" in bars and "tokenize" in bars and "0/9" in bars
    assert report["rows"]["para_train"] == 30
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in prepared.iterdir())
    for name in written:
        assert (tmp_path / name).read_bytes() == (prepared / name).read_bytes(), name
