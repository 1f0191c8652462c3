"""``mtbert predict``: sentences, pairs, CS224N files and ensembles from saved models; one-line errors, exit 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, tiny_config

from mtbert.cli import main
from mtbert.model import build_model
from mtbert.predictions import predict_split, write_predictions
from mtbert.predictor import load_predictor
from mtbert.prepare import load_prepared, load_special

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def models(tmp_path_factory, prepared, tiny_model_dir) -> dict[str, Path]:
    """Saved as the training stages save them: ``multitask`` (every task) and ``sst-<seed>`` / ``para-1``."""
    cfg = tiny_config(prepared, tiny_model_dir)
    root = tmp_path_factory.mktemp("models")
    folders = {}
    saved = [("multitask", None, 0), ("sst-1", ["sst"], 1), ("sst-2", ["sst"], 2), ("sst-3", ["sst"], 3)]
    for name, tasks, seed in [*saved, ("para-1", ["para"], 1)]:
        folders[name] = root / name
        model = build_model(cfg.model, cfg.task_specs(tasks), seed=seed)
        model.save(folders[name], str(tiny_model_dir), cfg.model.max_length)
    return folders


def run(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``mtbert predict ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        main(["predict", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def reference(folder: Path, prepared: Path, task: str, split: str):
    """What the predict stage computes for a prepared split with this model."""
    predictor = load_predictor(folder, CPU)
    spec = predictor.spec(task)
    data = load_prepared(prepared, task, split)
    return data, predict_split(predictor.model, spec, data, load_special(prepared), 32, CPU, 8, "fp32")


def first_row(raw: Path, columns: int) -> list[str]:
    return raw.read_text(encoding="utf-8").splitlines()[1].split("\t")[2 : 2 + columns]


def test_the_console_command_is_installed_with_the_package():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts == {"mtbert": "mtbert.cli:main"}


def test_a_sentence_gets_the_prediction_of_the_pipeline_and_every_class_probability(
    capsys, models, prepared, tiny_raw_dir
):
    sentence = first_row(tiny_raw_dir / "ids-sst-dev.csv", 1)
    code, out, err = run(capsys, "--model", models["sst-1"], *sentence)
    assert code == 0, err
    _, expected = reference(models["sst-1"], prepared, "sst", "dev")
    label = int(expected.values[0])
    names = ["negative", "somewhat negative", "neutral", "somewhat positive", "positive"]
    lines = out.splitlines()
    assert lines[0] == f"sst: {label} ({names[label]})"
    assert len(lines) == 6
    printed = [float(line.rsplit("= ", 1)[1]) for line in lines[1:]]
    np.testing.assert_allclose(printed, expected.probabilities[0], atol=5e-5)
    assert [line.split("(")[1].split(")")[0].strip() for line in lines[1:]] == names


@pytest.mark.parametrize(("model", "task"), [("para-1", "para"), ("multitask", "sts")])
def test_a_pair_task_takes_two_sentences(capsys, models, prepared, tiny_raw_dir, model, task):
    stem = {"para": "quora", "sts": "sts"}[task]
    pair = first_row(tiny_raw_dir / f"{stem}-dev.csv", 2)
    extra = ["--task", task] if model == "multitask" else []
    code, out, err = run(capsys, "--model", models[model], *extra, *pair)
    assert code == 0, err
    _, expected = reference(models[model], prepared, task, "dev")
    lines = out.splitlines()
    if task == "para":
        label = int(expected.values[0])
        assert lines[0] == f"para: {label} ({['not paraphrase', 'paraphrase'][label]})"
        assert float(lines[2].rsplit("= ", 1)[1]) == pytest.approx(expected.probabilities[0, 1], abs=5e-5)
    else:
        assert lines == [f"sts: {expected.values[0]:.4f} (similarity, 0 to 5)"]


@pytest.mark.parametrize(("task", "stem", "split"), [("para", "quora", "test"), ("sst", "ids-sst", "dev")])
def test_a_file_is_scored_as_the_predict_stage_writes_it(
    capsys, models, prepared, tiny_raw_dir, tmp_path, task, stem, split
):
    raw = tiny_raw_dir / f"{stem}-{'test-student' if split == 'test' else split}.csv"  # test: no label column
    out_file = tmp_path / "out.csv"
    code, out, err = run(capsys, "--model", models["multitask"], "--task", task, "--input", raw, "--output", out_file)
    assert code == 0, err
    assert out.strip() == f"{out_file}: 30 predictions of task {task}"
    data, expected = reference(models["multitask"], prepared, task, split)
    stage_file = tmp_path / "stage.csv"
    write_predictions(
        stage_file,
        data.ids,
        expected.values,
        load_predictor(models["multitask"], CPU).spec(task),
        expected.probabilities,
    )
    assert out_file.read_text() == stage_file.read_text()


def test_an_ensemble_combines_the_members_by_the_tasks_rule(capsys, models, tiny_raw_dir, tmp_path):
    members = [models["sst-1"], models["sst-2"], models["sst-3"]]
    flags = [a for m in members for a in ("--model", m)]
    code, out, err = run(
        capsys, "--ensemble", *flags, "--input", tiny_raw_dir / "ids-sst-dev.csv", "--output", tmp_path / "ens.csv"
    )
    assert code == 0, err
    rows = [line.split(",") for line in (tmp_path / "ens.csv").read_text().splitlines()]
    assert rows[0] == ["id", "prediction"]
    predictors = [load_predictor(m, CPU) for m in members]
    from mtbert.predictor import read_input

    table = read_input(tiny_raw_dir / "ids-sst-dev.csv", predictors[0].spec("sst"))
    values = np.stack([p.predict("sst", table).values for p in predictors])
    rounded = np.floor(values.mean(axis=0) + 0.5)  # the card's rule for SST
    assert [int(r[1]) for r in rows[1:]] == rounded.astype(int).tolist()
    assert [r[0] for r in rows[1:]] == table.ids

    code, out, err = run(capsys, "--ensemble", *flags, "--rule", "mean_probability", "a gorgeous, witty film")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[6] == "ensemble: mean_probability of 3 models (probabilities: their mean)"
    probabilities = [float(line.rsplit("= ", 1)[1]) for line in lines[1:6]]
    assert int(lines[0].split()[1]) == int(np.argmax(probabilities))
    assert [line.split(":")[0].strip() for line in lines[7:]] == [str(m) for m in members]


def _broken_csv(tmp_path: Path) -> Path:
    path = tmp_path / "broken.csv"
    path.write_text("\tid\tsentence\n0\ta1\tgood film\n1\ta2\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model", "{sst-1}", "--task", "mnli", "x"], "error: {sst-1}: no head for task 'mnli' (it predicts sst)"),
        (["--model", "{sst-1}", "--task", "sts", "a", "b"], "error: {sst-1}: no head for task 'sts' (it predicts sst)"),
        (["--model", "{missing}", "x"], "error: {missing}: model folder not found"),
        (
            ["--model", "{sst-1}", "--input", "{broken}", "--output", "{out}"],
            "error: {broken}:3: sentence: missing field: expected 3 tab-separated fields, found 2",
        ),
        (["--model", "{sst-1}", "one", "two"], "error: command line: task sst takes 1 sentence, got 2"),
        (["--model", "{para-1}", "one"], "error: command line: task para takes 2 sentences, got 1"),
        (["--model", "{multitask}", "x"], "error: {multitask}: predicts sst, para, sts; choose one with --task"),
        (["--model", "{sst-1}", "--model", "{sst-2}", "x"], "error: --model: 2 models given; add --ensemble"),
        (
            ["--ensemble", "--model", "{sst-1}", "--rule", "mean", "x"],
            "error: --rule: 'mean' is not a rule of task sst; allowed: rounded_mean, mean_probability",
        ),
        (["x"], "error: the following arguments are required: --model"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem_and_exit_2(capsys, models, tmp_path, args, expected):
    names = {
        **{k: str(v) for k, v in models.items()},
        "missing": str(tmp_path / "nope"),
        "broken": str(_broken_csv(tmp_path)),
        "out": str(tmp_path / "o.csv"),
    }
    code, out, err = run(capsys, *(a.format(**names) for a in args))
    assert code == 2
    assert err.splitlines() == [expected.format(**names)]
    assert out == ""
    assert not (tmp_path / "o.csv").exists()


def test_the_module_runs_as_a_command_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mtbert.cli", "predict", "--model", str(tmp_path / "none"), "x"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'none'}: model folder not found"]


def test_the_output_never_replaces_the_input(capsys, models, tiny_raw_dir, tmp_path):
    source = tmp_path / "dev.csv"
    source.write_bytes((tiny_raw_dir / "ids-sst-dev.csv").read_bytes())
    before = source.read_bytes()
    for force in ([], ["--force"]):
        code, _out, err = run(capsys, "--model", models["sst-1"], "--input", source, "--output", source, *force)
        assert code == 2 and err.splitlines() == [f"error: --output: {source} is the input file; choose another name"]
    same = tmp_path / "sub" / ".." / "dev.csv"  # another spelling of the same file
    (tmp_path / "sub").mkdir()
    code, _, err = run(capsys, "--model", models["sst-1"], "--input", source, "--output", same, "--force")
    assert code == 2 and "is the input file" in err
    assert source.read_bytes() == before


def test_an_existing_output_is_replaced_only_with_force(capsys, models, tiny_raw_dir, tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("mine\n")
    source = tiny_raw_dir / "ids-sst-dev.csv"
    code, _, err = run(capsys, "--model", models["sst-1"], "--input", source, "--output", target)
    assert code == 2 and err.splitlines() == [f"error: --output: {target} exists; add --force to replace it"]
    assert target.read_text() == "mine\n"
    code, _out, err = run(capsys, "--model", models["sst-1"], "--input", source, "--output", target, "--force")
    assert code == 0, err
    assert target.read_text().startswith("id,prediction,")


def test_a_missing_output_folder_is_refused_not_created(capsys, models, tiny_raw_dir, tmp_path):
    target = tmp_path / "new" / "deeper" / "out.csv"
    code, _, err = run(
        capsys, "--model", models["sst-1"], "--input", tiny_raw_dir / "ids-sst-dev.csv", "--output", target
    )
    assert code == 2
    assert err.splitlines() == [f"error: --output: the folder {target.parent} does not exist (create it first)"]
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--batch-size", "0", "x"], "error: --batch-size: must be >= 1, got 0"),
        (
            ["--device", "tpu", "x"],
            "error: --device: 'tpu' was asked for, but none is visible; available here: auto, {devices}",
        ),
        (["--task", "mnli", "x"], "error: {model}: no head for task 'mnli' (it predicts sst)"),
        (
            ["--ensemble", "--rule", "mean", "x"],
            "error: --rule: 'mean' is not a rule of task sst; allowed: rounded_mean, mean_probability",
        ),
        (
            ["--input", "{broken}", "--output", "{out}"],
            "error: {broken}:3: sentence: missing field: expected 3 tab-separated fields, found 2",
        ),
        (["--input", "{nofile}", "--output", "{out}"], "error: {nofile}: input file not found"),
        (["one", "two"], "error: command line: task sst takes 1 sentence, got 2"),
    ],
)
def test_every_option_is_checked_before_any_model_loads(capsys, models, tmp_path, monkeypatch, args, expected):
    def no_loading(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("mtbert.predictor.load_predictor", no_loading)
    from mtbert.devices import available_devices

    names = {
        "broken": str(_broken_csv(tmp_path)),
        "out": str(tmp_path / "o.csv"),
        "nofile": str(tmp_path / "no.csv"),
        "devices": ", ".join(available_devices()),
        "model": models["sst-1"],
    }
    code, out, err = run(capsys, "--model", models["sst-1"], *(a.format(**names) for a in args))
    assert (code, out) == (2, "")
    assert err.splitlines() == [expected.format(**names)]


def test_ensemble_members_must_predict_the_same_kind_of_values(models):
    import dataclasses

    from mtbert.errors import DataError
    from mtbert.predictor import member_spec, saved_heads

    heads = saved_heads([models["sst-1"], models["sst-2"]])
    assert member_spec(heads, "sst").classes == 5
    spec = heads[models["sst-2"]]["sst"]
    three = dataclasses.replace(spec.definition.label, max=2.0)  # a head of 3 classes
    heads[models["sst-2"]]["sst"] = dataclasses.replace(
        spec, definition=dataclasses.replace(spec.definition, label=three, class_names=())
    )
    with pytest.raises(DataError, match=r"sst-2: its sst head predicts 3 classes, .*sst-1's 5 classes"):
        member_spec(heads, "sst")
