"""Tasks from params.yaml: every bad ``task_defs`` value is one line naming its key; the default definitions give
exactly the three tasks the library once hard-coded; a new task needs no code; a saved model carries its tasks."""

from __future__ import annotations

import copy
import json
import typing

import numpy as np
import pytest
import torch
import yaml
from _tasks import TASKS
from conftest import ROOT
from scipy.stats import pearsonr
from torch.nn import functional as F
from transformers import AutoModel

from mtbert.combine import RULES
from mtbert.config import config_from_dict
from mtbert.data.reader import LabelRule
from mtbert.errors import ConfigError, DataError
from mtbert.model import MultiTaskModel, load_model, saved_specs
from mtbert.tasks import KINDS, KindName, TaskSpec, overall_score

PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
NLI = {  # a fourth task, by configuration alone
    "kind": "pair-classification",
    "files": {"train": "nli-train.csv", "dev": "nli-dev.csv", "test": "nli-test.csv"},
    "text_columns": ["premise", "hypothesis"],
    "label": {"column": "entails", "min": 0, "max": 1},
    "class_names": ["no", "yes"],
    "rules": ["mean_probability", "majority_vote"],
    "leaderboard_column": "Predicted_Entailment",
}
REL = {**NLI, "kind": "pair-regression", "label": {"column": "score", "min": 1, "max": 3}, "class_names": []}
REL = {**REL, "rules": ["mean"], "leaderboard_column": "Predicted_Score"}


def with_changes(changes: dict) -> dict:
    """The repository's params with dotted ``changes`` (a value of ``...`` deletes the key)."""
    data = copy.deepcopy(PARAMS)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        target = data
        for key in parents:
            target = target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return data


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task_defs": ...}, "missing key task_defs"),
        ({"task_defs.sst.kind": "ranking"}, "task_defs.sst.kind: got 'ranking', expected one of 'classification'"),
        ({"task_defs.sst.metric": "f1"}, "unknown key task_defs.sst.metric; allowed keys: class_names, files"),
        ({"task_defs.sst.files.test": ...}, "missing key task_defs.sst.files.test"),
        ({"task_defs.sst.files.dev": ""}, "task_defs.sst.files.dev: expected a file name in data.raw_dir, got ''"),
        ({"task_defs.sst.files.dev": "../x.csv"}, "task_defs.sst.files.dev: expected a file name"),
        ({"task_defs.para.files.dev": "quora-train.csv"}, "task_defs.para.files.train: the three splits need three"),
        ({"task_defs.sst.text_columns": ["a", "b"]}, "task_defs.sst.text_columns: a classification task reads 1"),
        ({"task_defs.sts.text_columns": ["s", "s"]}, "task_defs.sts.text_columns: a pair-regression task reads 2"),
        ({"task_defs.sst.text_columns": ["sentiment"]}, "task_defs.sst.text_columns: expected non-empty names other"),
        ({"task_defs.sts.label.min": 5}, "task_defs.sts.label.min: expected min < max, got min 5.0, max 5.0"),
        ({"task_defs.sts.label.max": float("nan")}, "task_defs.sts.label.max: expected a finite number, got nan"),
        ({"task_defs.sts.label.column": ""}, "task_defs.sts.label.column: expected a column name"),
        ({"task_defs.sst.label.min": 1}, "task_defs.sst.label.min: a classification task's classes are 0 .. max"),
        ({"task_defs.sst.label.max": 4.5}, "task_defs.sst.label.max: a classification task's classes are 0 .. max"),
        ({"task_defs.para.label.max": 2}, "task_defs.para.label.max: a pair-classification task's labels are 0 and 1"),
        ({"task_defs.sst.class_names": ["a", "b"]}, "task_defs.sst.class_names: expected 5 names (one per class)"),
        ({"task_defs.sts.class_names": ["low"]}, "task_defs.sts.class_names: a pair-regression task has no classes"),
        ({"task_defs.sts.rules": ["rounded_mean"]}, "task_defs.sts.rules: 'rounded_mean' is not a rule of a pair-re"),
        ({"task_defs.sst.rules": ["majority_vote"]}, "allowed: rounded_mean, mean_probability"),
        ({"task_defs.sst.rules": []}, "task_defs.sst.rules: expected a non-empty list of distinct rules"),
        ({"task_defs.sst.leaderboard_column": ""}, "task_defs.sst.leaderboard_column: expected a column name"),
        ({"task_defs.sst.label.max": "four"}, "task_defs.sst.label.max: got 'four', expected float"),
        ({"task_defs.SST-2": NLI}, "task_defs: task name 'SST-2': expected lower-case letters and digits"),
        ({"tasks": ["sst", "nli"]}, "tasks: task 'nli' has no definition in task_defs; defined: sst, para, sts"),
        ({"ensemble.rules.sts": "majority_vote"}, "ensemble.rules.sts: got 'majority_vote', allowed: mean"),
    ],
)
def test_a_bad_definition_is_one_line_naming_the_key(changes, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(with_changes(changes))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_kinds_are_one_table_and_every_rule_exists():
    assert tuple(KINDS) == typing.get_args(KindName)
    assert all(rule in RULES for kind in KINDS.values() for rule in kind.rules)


# --- the default definitions are today's three tasks, bit for bit --------------------------------------------

OUT = {"sst": torch.tensor([[2.0, 0.0, -1.0, 0.5, 0.0], [-0.3, 0.2, 1.5, 0.1, 0.7]]), "para": torch.tensor([1.3, -0.4])}
OUT["sts"] = torch.tensor([-0.7, 2.6])
Y = {"sst": torch.tensor([3.0, 2.0]), "para": torch.tensor([1.0, 0.0]), "sts": torch.tensor([2.4, 2.5])}


def _cosine_embedding(out, y):  # type: ignore[no-untyped-def]
    cos = out / 5.0
    return torch.where(y >= 2.5, 1 - cos, cos.clamp(min=0)).mean()


# The library's hard-coded TASKS before task_defs (commit f5ad615), the parts that compute.
REFERENCE = {
    "sst": {
        "files": ("ids-sst-train.csv", "ids-sst-dev.csv", "ids-sst-test-student.csv"),
        "text_columns": ("sentence",),
        "label": LabelRule("sentiment", 0, 4, integer=True),
        "n_out": 5,
        "classes": 5,
        "losses": {
            "ce": lambda out, y: F.cross_entropy(out, y.long()),
            "ce-smooth": lambda out, y: F.cross_entropy(out, y.long(), label_smoothing=0.1),
        },
        "decode": lambda out: out.argmax(-1),
        "probabilities": lambda out: torch.softmax(out, dim=-1),
        "metric_name": "acc",
        "rules": ("rounded_mean", "mean_probability"),
        "leaderboard_column": "Predicted_Sentiment",
        "class_names": ("negative", "somewhat negative", "neutral", "somewhat positive", "positive"),
        "encodings": ("single",),
        "cosine_scale": None,
        "prediction_is_int": True,
        "raw_cosine_losses": frozenset(),
    },
    "para": {
        "files": ("quora-train.csv", "quora-dev.csv", "quora-test-student.csv"),
        "text_columns": ("sentence1", "sentence2"),
        "label": LabelRule("is_duplicate", 0, 1, integer=True),
        "n_out": 1,
        "classes": 2,
        "losses": {
            "bce": lambda out, y: F.binary_cross_entropy_with_logits(out, y),
            "mse": lambda out, y: F.mse_loss(torch.sigmoid(out), y),
        },
        "decode": lambda out: (out > 0).long(),
        "probabilities": lambda out: torch.stack([1 - torch.sigmoid(out), torch.sigmoid(out)], dim=-1),
        "metric_name": "acc",
        "rules": ("majority_vote", "mean_probability"),
        "leaderboard_column": "Predicted_Is_Paraphrase",
        "class_names": ("not paraphrase", "paraphrase"),
        "encodings": ("cross", "bi-cosine", "bi-concat"),
        "cosine_scale": None,
        "prediction_is_int": True,
        "raw_cosine_losses": frozenset(),
    },
    "sts": {
        "files": ("sts-train.csv", "sts-dev.csv", "sts-test-student.csv"),
        "text_columns": ("sentence1", "sentence2"),
        "label": LabelRule("similarity", 0, 5),
        "n_out": 1,
        "classes": 0,
        "losses": {"mse": lambda out, y: F.mse_loss(out, y), "cosine-embedding": _cosine_embedding},
        "decode": lambda out: out.clamp(0.0, 5.0),
        "probabilities": None,
        "metric_name": "pearson",
        "rules": ("mean",),
        "leaderboard_column": "Predicted_Similiary",
        "class_names": (),
        "encodings": ("bi-cosine", "cross", "bi-concat"),
        "cosine_scale": 5.0,
        "prediction_is_int": False,
        "raw_cosine_losses": frozenset({"cosine-embedding"}),
    },
}
PLAIN = ["text_columns", "label", "n_out", "classes", "metric_name", "rules", "leaderboard_column", "class_names"]
PLAIN += ["encodings", "cosine_scale", "prediction_is_int", "raw_cosine_losses"]


@pytest.mark.parametrize("task", list(REFERENCE))
def test_the_default_definitions_are_the_former_hard_coded_tasks(task):
    spec, ref = TASKS[task], REFERENCE[task]
    assert list(TASKS) == list(REFERENCE)
    assert {key: getattr(spec, key) for key in PLAIN} == {key: ref[key] for key in PLAIN}
    assert tuple(spec.file_name(split) for split in ("train", "dev", "test")) == ref["files"]
    assert list(spec.losses) == list(ref["losses"]) and spec.loss_name == next(iter(ref["losses"]))
    for name, loss in ref["losses"].items():
        assert torch.equal(spec.losses[name](OUT[task], Y[task]), loss(OUT[task], Y[task])), name
    assert torch.equal(spec.decode(OUT[task]), ref["decode"](OUT[task]))
    if ref["probabilities"] is None:
        assert spec.probabilities is None
    else:
        assert torch.equal(spec.probabilities(OUT[task]), ref["probabilities"](OUT[task]))


def test_the_default_metrics_and_overall_score_are_the_former_ones():
    pred, gold = np.array([0.0, 1.0, 2.0, 2.0]), np.array([0.0, 1.0, 1.0, 2.0])
    assert TASKS["sst"].metric(pred, gold) == TASKS["para"].metric(pred, gold) == 0.75
    assert TASKS["sts"].metric(pred, gold) == float(pearsonr(pred, gold).statistic)
    metrics = {"sst_acc": 0.5, "para_acc": 0.8, "sts_pearson": 0.6}
    assert overall_score(metrics, list(TASKS.values())) == float(np.mean([0.5, 0.8, (1 + 0.6) / 2]))


# --- a new task by configuration alone ----------------------------------------------------------------------


def test_a_fourth_task_is_a_params_entry():
    cfg = config_from_dict(with_changes({"task_defs.nli": NLI, "tasks": ["sst", "para", "sts", "nli"]}))
    nli = cfg.task_specs()[-1]
    assert (nli.name, nli.encoding, nli.loss_name, nli.n_out, nli.classes) == ("nli", "cross", "bce", 1, 2)
    assert nli.file_name("test") == "nli-test.csv" and nli.text_columns == ("premise", "hypothesis")
    assert cfg.ensemble_rule("nli") == "mean_probability" and nli.metric_name == "acc"


def test_a_score_range_sets_decoding_the_cosine_scale_and_the_cosine_loss_threshold():
    rel = TaskSpec("rel", config_from_dict(with_changes({"task_defs.rel": REL})).task_defs["rel"])
    assert rel.decode(torch.tensor([-1.0, 0.5, 2.0, 7.0])).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert rel.cosine_scale == 3.0 and rel.label == LabelRule("score", 1.0, 3.0, integer=False)
    cosine = rel.configure(loss="cosine-embedding").loss
    out, y = torch.tensor([1.5, 1.5]), torch.tensor([2.0, 1.9])  # cos 0.5; 2 = the midpoint of [1, 3]: similar
    assert cosine(out, y).item() == pytest.approx((0.5 + 0.5) / 2)


# --- saved models carry their definitions -------------------------------------------------------------------


@pytest.fixture
def custom_model(tiny_model_dir, tmp_path):
    rel = TaskSpec("rel", config_from_dict(with_changes({"task_defs.rel": REL})).task_defs["rel"])
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    specs = [TASKS["sst"].configure(loss="ce-smooth"), rel.configure("cross", mlp=(8,))]
    model = MultiTaskModel(encoder, specs, pooling="mean", dropout=0.1)
    model.save(tmp_path / "model")
    return model, tmp_path / "model"


def test_a_saved_model_rebuilds_its_tasks_from_its_folder_alone(custom_model):
    model, folder = custom_model
    meta = json.loads((folder / "mtbert.json").read_text(encoding="utf-8"))
    assert meta["task_defs"] == {"sst": PARAMS["task_defs"]["sst"], "rel": {**REL, "label": {**REL["label"]}}}
    assert saved_specs(folder) == model.specs
    loaded = load_model(folder).eval()
    ids = {"input_ids": torch.tensor([[101, 2000, 102]]), "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    with torch.no_grad():
        assert torch.equal(loaded("rel", ids), model.eval()("rel", ids))


def test_a_model_saved_without_definitions_is_refused_in_one_line(custom_model):
    _, folder = custom_model
    meta = json.loads((folder / "mtbert.json").read_text(encoding="utf-8"))
    del meta["task_defs"]
    (folder / "mtbert.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_model(folder)
    problem = "no task_defs (saved before models recorded their tasks); retrain or re-save the model"
    assert str(info.value) == f"{folder / 'mtbert.json'}: {problem}"


def test_a_saved_definition_is_checked_as_params_are(custom_model):
    _, folder = custom_model
    meta = json.loads((folder / "mtbert.json").read_text(encoding="utf-8"))
    meta["task_defs"]["rel"]["kind"] = "ranking"
    (folder / "mtbert.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(DataError, match=r"mtbert.json: task_defs.rel.kind: got 'ranking', expected one of"):
        saved_specs(folder)
