"""Atomic writes (mtbert.files): a writer stopped mid-file leaves the old file, never a torn one, and every writer of
the pipeline's outputs goes through them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _tasks import TASKS
from conftest import ROOT

from mtbert import files
from mtbert.checkpoint import Checkpointer
from mtbert.data.encoded import EncodedSplit, save_split
from mtbert.files import open_atomic, write_text_atomic
from mtbert.leaderboard import write_leaderboard
from mtbert.predictions import write_predictions
from mtbert.report.mistakes import write_rows

OLD = b"the previous file\n"


def test_an_exception_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(OLD)
    with pytest.raises(RuntimeError), open_atomic(target) as f:
        f.write("half of the new")
        raise RuntimeError("killed")
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"


WRITER = """
import sys, time
sys.path.insert(0, {src!r})
from pathlib import Path
from mtbert.files import open_atomic
with open_atomic(Path({path!r})) as f:
    for i in range(10_000):
        f.write("new line %d\\n" % i)
        f.flush()
        if i == 100:
            print("writing", flush=True)
            time.sleep(60)
"""


def test_a_writer_killed_mid_file_leaves_the_old_file(tmp_path):
    """A real SIGKILL in the middle of the file (no exception handler runs): the target is the old file."""
    target = tmp_path / "predictions.csv"
    target.write_bytes(OLD)
    code = WRITER.format(src=str(ROOT / "src"), path=str(target))
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"
    torn = next(tmp_path.glob(".predictions.csv.*.tmp"))  # the half-written file is the temporary one
    assert "new line 100" in torn.read_text()
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert target.read_bytes() == OLD


def writers(tmp_path: Path, tiny_model_dir: Path) -> dict[str, tuple[Path, object]]:
    """Each writer of an output, and the file it writes."""
    from conftest import tiny_config

    from mtbert.model import build_model
    from mtbert.report.figures import scatter

    spec = TASKS["sst"]
    ids, values = ["a", "b"], np.array([1.0, 2.0])
    column = (np.arange(3, dtype=np.int32), np.array([0, 1, 3], dtype=np.int64))
    split = EncodedSplit(ids=ids, columns=[column], labels=None)
    cfg = tiny_config(tmp_path, tiny_model_dir)
    model = build_model(cfg.model, cfg.task_specs(), seed=0)
    stage = ROOT / "stages"
    sys.path.insert(0, str(stage))
    from _runner import write_json  # the stage layer's metrics writer

    return {
        "predictions": (tmp_path / "p.csv", lambda p: write_predictions(p, ids, values, spec)),
        "leaderboard": (tmp_path / "l.csv", lambda p: write_leaderboard(p, ids, values, spec)),
        "report rows": (tmp_path / "e.csv", lambda p: write_rows(p, [{"id": "a"}], ["id"])),
        "report figure": (tmp_path / "f.png", lambda p: scatter(values, values, "t", p)),
        "prepared split": (tmp_path / "s.safetensors", lambda p: save_split(split, p)),
        "metrics": (tmp_path / "m.json", lambda p: write_json(p, {"a": 1})),
        "checkpoint": (tmp_path / "c" / "state.pt", lambda p: Checkpointer(p.parent, "k").save({"x": torch.ones(1)})),
        "model weights": (tmp_path / "model" / "model.safetensors", lambda p: model.save(p.parent)),
        "model meta": (tmp_path / "model2" / "mtbert.json", lambda p: model.save(p.parent)),
    }


@pytest.mark.parametrize(
    "name",
    [
        "predictions",
        "leaderboard",
        "report rows",
        "report figure",
        "prepared split",
        "metrics",
        "checkpoint",
        "model weights",
        "model meta",
    ],
)
def test_every_output_writer_writes_through_a_temporary_file(tmp_path, tiny_model_dir, monkeypatch, name):
    """With the final rename onto the file failing (a kill just before it), the old file is still there, untouched:
    the writer never wrote into it; and the temporary file is gone."""
    path, write = writers(tmp_path, tiny_model_dir)[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(OLD)
    real_replace = os.replace

    def no_rename_onto_the_target(src: str, dst: str) -> None:
        if Path(dst) == path:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", no_rename_onto_the_target)
    with pytest.raises(KeyboardInterrupt):
        write(path)
    assert path.read_bytes() == OLD
    assert not list(path.parent.glob(".*.tmp"))
    monkeypatch.undo()
    write(path)
    assert path.read_bytes() != OLD
