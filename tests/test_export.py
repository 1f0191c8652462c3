"""mtbert.export and mtbert.modelcard: each format round-trips on the tiny model (the model card's own code gives
mtbert's predictions), the card carries the run's metrics and params, and every refusal is one line before any
output is written."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

from mtbert.cli import main
from mtbert.data.reader import Table
from mtbert.export import export_model
from mtbert.model import build_model
from mtbert.predictor import load_predictor

FIRST = ["a man plays a guitar .", "the cat", "a gorgeous , witty film that never lets go of you"]
SECOND = ["a man is playing music", "a dog sat on the mat all day long", "hi"]


@pytest.fixture(scope="module")
def saved(prepared, tiny_model_dir, tmp_path_factory) -> Path:
    """A saved three-task model (the default heads) in the pipeline's layout, with its metrics and params."""
    root = tmp_path_factory.mktemp("project")
    cfg = tiny_config(prepared, tiny_model_dir)
    model = build_model(cfg.model, cfg.task_specs(["sst", "para", "sts"]), seed=0)
    model.save(root / "models" / "multitask", str(tiny_model_dir), 32)
    (root / "metrics").mkdir()
    metrics = {"sst_acc": 0.25, "para_acc": 0.5, "sts_pearson": 0.125, "overall": 0.4, "loss_sst": 1.5}
    (root / "metrics" / "pretrain.json").write_text(json.dumps(metrics))
    (root / "params.yaml").write_text("tasks: [sst, para, sts]\n")
    return root / "models" / "multitask"


def _card_namespace(out: Path) -> dict:
    """Run the model card's code as a user would paste it."""
    card = (out / "README.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", card, re.S)
    namespace: dict = {}
    exec(code, namespace)  # the card's own code is what the test checks
    return namespace


def _mtbert(folder: Path, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    predictor = load_predictor(folder, torch.device("cpu"))
    columns = predictor.spec(task).text_columns
    texts = dict(zip(columns, [FIRST, SECOND], strict=False))
    result = predictor.predict(task, Table(Path("test"), ["1", "2", "3"], texts, None, []))
    return result.values, result.probabilities


def _check_task(namespace: dict, folder: Path, task: str) -> None:
    values, probabilities = _mtbert(folder, task)
    args = [FIRST] if task == "sst" else [FIRST, SECOND]
    prediction, probs = namespace[f"predict_{task}"](*args)
    np.testing.assert_allclose(prediction.numpy(), values, atol=1e-5)
    if probabilities is None:
        assert probs is None
    else:
        np.testing.assert_allclose(probs.numpy(), probabilities, atol=1e-5)


def test_hf_export_reproduces_every_head_and_carries_the_runs_metrics(saved, tmp_path, capsys):
    out = tmp_path / "hf"
    main(["export", "--model", str(saved), "--format", "hf", "--output", str(out)])
    assert capsys.readouterr().out.strip() == f"{out}: hf export of {saved} (sst, para, sts)"
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out).model_type == "bert"  # a plain transformers folder
    namespace = _card_namespace(out)
    for task in ("sst", "para", "sts"):
        _check_task(namespace, saved, task)
    card = (out / "README.md").read_text()
    assert "| sst_acc | 0.2500 |" in card and "| overall | 0.4000 |" in card and "loss_sst" not in card
    digest = hashlib.sha256(b"tasks: [sst, para, sts]\n").hexdigest()
    assert f"`{digest}`" in card and card.startswith("---\nlibrary_name: transformers\n")
    assert "on the tasks it was trained on (sst, para, sts)" in card  # the intended use names the model's own tasks


def test_sentence_transformers_export_gives_the_sts_score_from_the_cosine(saved, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "st"
    assert export_model(saved, "sentence-transformers", out) == ["sts"]  # the one bi-encoder task
    st = SentenceTransformer(str(out), device="cpu")
    cos = torch.nn.functional.cosine_similarity(
        st.encode(FIRST, convert_to_tensor=True), st.encode(SECOND, convert_to_tensor=True), dim=-1
    )
    values, _ = _mtbert(saved, "sts")
    np.testing.assert_allclose((5 * cos.clamp(min=0)).clamp(0, 5).numpy(), values, atol=1e-5)  # the stated relation
    _check_task(_card_namespace(out), saved, "sts")


@pytest.mark.filterwarnings("error:Exporting a model while it is in training mode")  # the wrapper in eval mode too
@pytest.mark.parametrize("task", ["sst", "sts"])  # a single-sentence graph and a pair of bi-encoded inputs
def test_onnx_export_runs_in_onnxruntime_as_in_pytorch(saved, tmp_path, task):
    out = tmp_path / f"onnx-{task}"
    assert export_model(saved, "onnx", out, task) == [task]
    _check_task(_card_namespace(out), saved, task)  # other batch sizes and lengths than the traced example


def test_refusals_are_one_line_and_write_nothing(saved, prepared, tiny_model_dir, tmp_path, capsys):
    def refused(*args: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            main(["export", *args])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1
        return err.strip()

    out = str(tmp_path / "out")
    missing = tmp_path / "nope"
    assert (
        refused("--model", str(missing), "--format", "hf", "--output", out)
        == f"error: {missing}: model folder not found"
    )
    (tmp_path / "empty").mkdir()
    assert "mtbert.json: model file not found" in refused(
        "--model", str(tmp_path / "empty"), "--format", "hf", "--output", out
    )
    assert "'tflite' is not one of hf, sentence-transformers, onnx" in refused(
        "--model", str(saved), "--format", "tflite", "--output", out
    )
    assert "choose one with --task" in refused("--model", str(saved), "--format", "onnx", "--output", out)
    assert "sentence-transformers takes a bi-encoder" in refused(
        "--model", str(saved), "--format", "sentence-transformers", "--task", "sst", "--output", out
    )
    assert "inside the model folder" in refused("--model", str(saved), "--format", "hf", "--output", str(saved / "x"))
    assert "inside the model folder" in refused("--model", str(saved), "--format", "hf", "--output", str(saved.parent))
    assert "does not exist" in refused("--model", str(saved), "--format", "hf", "--output", str(tmp_path / "a" / "b"))
    (tmp_path / "taken").mkdir()
    assert "exists; add --force" in refused(
        "--model", str(saved), "--format", "hf", "--output", str(tmp_path / "taken")
    )
    assert "--metrics: " in refused("--model", str(saved), "--format", "hf", "--output", out, "--metrics", str(missing))

    cfg = tiny_config(prepared, tiny_model_dir, model={"pals": 8, "pal_heads": 2})
    build_model(cfg.model, cfg.task_specs(["sts"]), seed=0).save(tmp_path / "pal", str(tiny_model_dir), 32)
    capsys.readouterr()  # the tiny encoder's load report
    for fmt in ("hf", "sentence-transformers"):
        line = refused("--model", str(tmp_path / "pal"), "--format", fmt, "--output", out)
        assert line == (
            f"error: {tmp_path / 'pal' / 'mtbert.json'}: pals: a model with PALs is not a plain BertModel; export it "
            f"with --format onnx, not {fmt}"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "pal", "taken"]  # nothing written, no temporary


def test_a_failed_export_leaves_the_old_one(saved, tmp_path, monkeypatch):
    from mtbert import export

    out = tmp_path / "hf"
    export_model(saved, "hf", out)
    before = sorted(p.name for p in out.iterdir())

    def broken(predictor, folder, tasks):  # type: ignore[no-untyped-def]
        (folder / "config.json").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setitem(export.WRITERS, "hf", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(saved, "hf", out, force=True)
    assert sorted(p.name for p in out.iterdir()) == before and json.loads((out / "config.json").read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]  # the temporary folder is gone
