"""Tests for mtbert.report.sources: dvclive curves, and dev predictions joined with the raw dev file."""

from __future__ import annotations

import pytest
from _tasks import TASKS
from conftest import write_cs224n

from mtbert.errors import DataError
from mtbert.report.sources import load_task_dev, read_curve, read_curves, read_metrics


def test_read_curve_takes_the_column_named_like_the_file(tmp_path):
    (tmp_path / "grad").mkdir()
    (tmp_path / "loss_sst.tsv").write_text("timestamp\tstep\tloss_sst\n9\t0\t1.5\n9\t1\t1.25\n")
    (tmp_path / "grad" / "cos_sst_para.tsv").write_text("step\tcos_sst_para\n0\t0.1\n")
    curves = read_curves(tmp_path)
    assert list(curves) == ["loss_sst"]  # not recursive: grad/ is read on its own
    assert curves["loss_sst"].steps.tolist() == [0, 1] and curves["loss_sst"].values.tolist() == [1.5, 1.25]
    assert read_curves(tmp_path / "missing") == {}
    (tmp_path / "bad.tsv").write_text("step\tother\n0\t1\n")
    with pytest.raises(DataError, match=r"bad\.tsv:1: expected the columns 'step' and 'bad'"):
        read_curve(tmp_path / "bad.tsv")


def test_metrics_file_missing_or_broken_is_one_line(tmp_path):
    with pytest.raises(DataError, match="did the ensemble stage run"):
        read_metrics(tmp_path / "ensemble.json")
    (tmp_path / "ensemble.json").write_text("{")
    with pytest.raises(DataError, match="not valid JSON"):
        read_metrics(tmp_path / "ensemble.json")


def _write_predictions(path, ids, votes):
    path.write_text(
        "id,prediction,p_0,p_1\n" + "".join(f"{i},{v},{1 - v}.0,{v}.0\n" for i, v in zip(ids, votes, strict=True))
    )


def test_dev_predictions_join_the_raw_dev_file_by_row(tmp_path):
    raw = write_cs224n(tmp_path / "raw", n=6)
    lines = (raw / "quora-dev.csv").read_text().splitlines()[1:]
    ids = [line.split("\t")[1] for line in lines]
    files = {m: tmp_path / f"{m}.csv" for m in ("a", "b")}
    _write_predictions(files["a"], ids, [1, 0, 1, 0, 1, 0])
    _write_predictions(files["b"], ids, [1, 1, 1, 0, 0, 0])
    (tmp_path / "ens.csv").write_text("id,prediction\n" + "".join(f"{i},1\n" for i in ids))
    task = load_task_dev(TASKS["para"], raw / "quora-dev.csv", files, tmp_path / "ens.csv")
    assert task.ids == ids and task.members == ["a", "b"]
    assert task.texts["sentence1"][2] == lines[2].split("\t")[2]
    assert task.votes.shape == (2, 6) and task.probabilities.shape == (2, 6, 2)
    assert task.gold.tolist() == [float(line.split("\t")[4]) for line in lines]
    (tmp_path / "ens.csv").write_text("id,prediction\n" + "".join(f"{i},1\n" for i in reversed(ids)))
    with pytest.raises(DataError, match=r"ens\.csv: ids differ from .*quora-dev\.csv \(stale predictions"):
        load_task_dev(TASKS["para"], raw / "quora-dev.csv", files, tmp_path / "ens.csv")
