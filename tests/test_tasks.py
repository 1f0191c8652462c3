"""Tests for mtbert.tasks: the tasks of params.yaml's task_defs on a tiny BERT, decoding, metrics, overall score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _tasks import TASKS
from conftest import repo_params
from scipy.stats import pearsonr
from transformers import AutoModel, AutoTokenizer

from mtbert.config import config_from_dict
from mtbert.data.encoded import Batch, EncodedSplit, SpecialTokens, collate, encode_table
from mtbert.data.reader import Table
from mtbert.heads import CosineHead
from mtbert.model import MultiTaskModel
from mtbert.tasks import init_head, overall_score

B = 4
SENTENCES = [
    "the movie is good",
    "what a dull plot",
    "who can tell the best story",
    "awful",
    "great fun film of the year",
    "why is the plot so bad",
    "the worst film",
    "how good is the story",
]
LABELS = {"sst": [0.0, 4.0, 2.0, 1.0], "para": [0.0, 1.0, 1.0, 0.0], "sts": [0.0, 2.5, 5.0, 3.2]}
OUTPUT_SHAPES = {"sst": (B, 5), "para": (B,), "sts": (B,)}


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> MultiTaskModel:
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    return MultiTaskModel(encoder, list(TASKS.values()), pooling="mean", dropout=0.1)


@pytest.fixture(scope="module")
def encoded(tiny_model_dir) -> tuple[dict[str, EncodedSplit], SpecialTokens]:
    """Each task's B labelled rows, tokenized, and the special tokens."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    special = SpecialTokens(tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    splits = {}
    for spec in TASKS.values():
        texts = {col: SENTENCES[i * B : (i + 1) * B] for i, col in enumerate(spec.text_columns)}
        table = Table(Path(f"{spec.name}.csv"), [f"id{i}" for i in range(B)], texts, LABELS[spec.name], [])
        splits[spec.name] = encode_table(table, spec.text_columns, tokenizer)
    return splits, special


@pytest.fixture(scope="module")
def batches(encoded) -> dict[str, Batch]:
    splits, special = encoded
    return {t: collate(splits[t], np.arange(B), TASKS[t].encoding, special, max_length=32) for t in TASKS}


def test_tasks_are_the_three_cs224n_tasks():
    assert list(TASKS) == ["sst", "para", "sts"]
    encodings = {name: spec.encoding for name, spec in TASKS.items()}
    assert encodings == {"sst": "single", "para": "cross", "sts": "bi-cosine"}


@pytest.mark.parametrize("task", list(TASKS))
def test_head_output_shape(model, batches, task):
    model.eval()
    with torch.no_grad():
        out = model(task, batches[task].inputs)
    assert tuple(out.shape) == OUTPUT_SHAPES[task]
    assert torch.isfinite(out).all()
    if task == "sts":
        assert ((out >= 0) & (out <= 5)).all()


@pytest.mark.parametrize("task", list(TASKS))
def test_loss_is_a_finite_scalar_with_a_gradient_to_the_encoder_and_own_head_only(model, batches, task):
    model.train()
    model.zero_grad(set_to_none=True)
    batch = batches[task]
    loss = TASKS[task].loss(model(task, batch.inputs), batch.labels)
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in model.shared_parameters())
    for name, head in model.heads.items():
        for p in head.parameters():
            assert (p.grad is not None) == (name == task), (name, task)
    model.zero_grad(set_to_none=True)


def test_losses_are_zero_for_a_perfect_output_and_larger_for_a_wrong_one():
    sst_y = torch.tensor([0.0, 4.0, 2.0])
    perfect = torch.nn.functional.one_hot(sst_y.long(), 5).float() * 50
    wrong = torch.nn.functional.one_hot((sst_y.long() + 1) % 5, 5).float() * 50
    assert TASKS["sst"].loss(perfect, sst_y) < 1e-6 < TASKS["sst"].loss(wrong, sst_y)

    para_y = torch.tensor([0.0, 1.0, 1.0])
    logits = (para_y * 2 - 1) * 50  # [B], as the head outputs
    assert TASKS["para"].loss(logits, para_y) < 1e-6 < TASKS["para"].loss(-logits, para_y)

    sts_y = torch.tensor([0.0, 2.5, 5.0])
    assert TASKS["sts"].loss(sts_y.clone(), sts_y) == 0
    assert TASKS["sts"].loss(sts_y + 1, sts_y) == pytest.approx(1.0)


@pytest.mark.parametrize("task", list(TASKS))
def test_decode_of_model_outputs_gives_valid_predictions(model, batches, task):
    model.eval()
    with torch.no_grad():
        pred = TASKS[task].decode(model(task, batches[task].inputs))
    assert tuple(pred.shape) == (B,)
    if task == "sst":
        assert not pred.is_floating_point()
        assert set(pred.tolist()) <= set(range(5))
    elif task == "para":
        assert not pred.is_floating_point()
        assert set(pred.tolist()) <= {0, 1}
    else:
        assert pred.is_floating_point()
        assert ((pred >= 0) & (pred <= 5)).all()


def test_decode_on_hand_made_outputs():
    sst = torch.tensor([[0.1, 3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.5]])
    assert TASKS["sst"].decode(sst).tolist() == [1, 4]
    para = torch.tensor([2.0, -1.0, 0.0])
    assert TASKS["para"].decode(para).tolist() == [1, 0, 0]
    sts = torch.tensor([0.0, 2.75, 5.0])
    assert TASKS["sts"].decode(sts).tolist() == [0.0, 2.75, 5.0]


def test_cosine_head_maps_cosine_to_zero_five():
    head = CosineHead(5.0)
    u = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    v = torch.tensor([[2.0, 0.0], [-1.0, 0.0], [0.0, 3.0], [1.0, 0.0]])
    assert head(u, v).tolist() == pytest.approx([5.0, 0.0, 0.0, 5.0 / 2**0.5])


@pytest.mark.parametrize("task", ["sst", "para"])
def test_accuracy(task):
    metric = TASKS[task].metric
    gold = np.array([0.0, 1.0, 1.0, 0.0])
    assert metric(np.array([0.0, 1.0, 1.0, 0.0]), gold) == 1.0
    assert metric(np.array([0.0, 1.0, 0.0, 0.0]), gold) == 0.75
    assert metric(1 - gold, gold) == 0.0
    assert TASKS[task].metric_name == "acc"


def test_pearson():
    metric = TASKS["sts"].metric
    gold = np.array([0.0, 1.0, 2.5, 4.0, 5.0])
    assert metric(2 * gold + 1, gold) == pytest.approx(1.0)
    assert metric(-gold, gold) == pytest.approx(-1.0)
    pred = np.array([0.3, 1.5, 1.0, 4.5, 3.0])
    assert metric(pred, gold) == pytest.approx(pearsonr(pred, gold).statistic)
    assert TASKS["sts"].metric_name == "pearson"


def test_pearson_of_a_constant_is_zero_not_nan():
    metric = TASKS["sts"].metric
    gold = np.array([0.0, 1.0, 2.5, 4.0])
    assert metric(np.full(4, 2.5), gold) == 0.0
    assert metric(gold, np.full(4, 3.0)) == 0.0


def test_overall_score_formula():
    metrics = {"sst_acc": 0.5, "para_acc": 0.8, "sts_pearson": 0.4, "overall": 123.0}
    expected = (0.5 + 0.8 + (1 + 0.4) / 2) / 3
    assert overall_score(metrics, list(TASKS.values())) == pytest.approx(expected)
    worst = {"sst_acc": 0.0, "para_acc": 0.0, "sts_pearson": -1.0}
    assert overall_score(worst, list(TASKS.values())) == 0.0
    assert overall_score({"sts_pearson": 0.0}, [TASKS["sts"]]) == 0.5
    assert overall_score({"sst_acc": 0.25}, [TASKS["sst"]]) == 0.25


def _filled_head(value: float) -> torch.nn.Module:
    head = TASKS["sst"].make_head(64, 0.1)
    for p in head.parameters():
        torch.nn.init.constant_(p, value)
    return head


def test_init_head_resets_weights_deterministically_given_a_generator():
    a, b, c = _filled_head(1.0), _filled_head(-3.0), _filled_head(1.0)
    init_head(a, torch.Generator().manual_seed(7))
    init_head(b, torch.Generator().manual_seed(7))
    init_head(c, torch.Generator().manual_seed(8))
    wa, wb, wc = a.linear.weight, b.linear.weight, c.linear.weight
    assert torch.equal(wa, wb)
    assert not torch.equal(wa, wc)
    assert 0.015 < wa.std().item() < 0.025
    assert abs(wa.mean().item()) < 0.01
    for head in (a, b, c):
        assert torch.equal(head.linear.bias, torch.zeros(5))


def test_init_head_accepts_a_head_without_parameters():
    head = TASKS["sts"].make_head(64, 0.1)
    init_head(head, torch.Generator().manual_seed(0))
    assert list(head.parameters()) == []


@pytest.mark.parametrize(
    ("task", "split", "name"),
    [
        ("sst", "train", "ids-sst-train.csv"),
        ("sst", "test", "ids-sst-test-student.csv"),
        ("para", "dev", "quora-dev.csv"),
        ("para", "test", "quora-test-student.csv"),
        ("sts", "test", "sts-test-student.csv"),
    ],
)
def test_file_name(task, split, name):
    assert TASKS[task].file_name(split) == name


def test_file_names_match_the_cs224n_files(tiny_raw_dir):
    for spec in TASKS.values():
        for split in ("train", "dev", "test"):
            assert (tiny_raw_dir / spec.file_name(split)).is_file()


# --- head and loss options (TaskSpec.configure) --------------------------------------------------------------


def test_configure_defaults_are_the_seed_setup():
    assert {n: (s.encoding, s.loss_name) for n, s in TASKS.items()} == {
        "sst": ("single", "ce"),
        "para": ("cross", "bce"),
        "sts": ("bi-cosine", "mse"),
    }
    assert TASKS["sts"].configure() == TASKS["sts"]


@pytest.mark.parametrize(
    ("task", "options", "message"),
    [
        ("sst", {"encoding": "cross"}, "encoding: got 'cross', expected one of single"),
        ("para", {"loss": "ce"}, "loss: got 'ce', expected one of bce, mse"),
        ("sts", {"encoding": "cross", "loss": "cosine-embedding"}, "needs encoding 'bi-cosine'"),
        ("sts", {"mlp": (8,)}, "a bi-cosine head has no layers"),
        ("para", {"mlp": (0,)}, "hidden sizes must be >= 1"),
        ("sst", {"dropout": 1.0}, "dropout: must be in [0, 1)"),
    ],
)
def test_configure_rejects_what_the_task_does_not_allow(task, options, message):
    with pytest.raises(ValueError) as info:
        TASKS[task].configure(**options)
    assert message in str(info.value)


def test_options_round_trip_through_configure():
    spec = TASKS["para"].configure("bi-concat", "mse", (16, 8), 0.3)
    assert (spec.encoding, spec.loss_name, spec.mlp, spec.head_dropout) == ("bi-concat", "mse", (16, 8), 0.3)
    options = spec.options()
    assert TASKS["para"].configure(**{**options, "mlp": tuple(options["mlp"])}) == spec


def test_config_builds_the_specs_of_task_defs_with_the_heads_of_model_heads():
    params = repo_params()
    params["model"]["heads"] = {"sts": {"encoding": "cross"}}
    sst, sts = config_from_dict(params).task_specs(["sst", "sts"])
    assert sst == TASKS["sst"]
    assert sts.encoding == "cross" and sts.loss_name == "mse"


def test_para_losses_bce_on_the_logit_and_mse_on_its_probability():
    out, y = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([1.0, 0.0, 0.0])
    bce = TASKS["para"].configure(loss="bce").loss(out, y)
    mse = TASKS["para"].configure(loss="mse").loss(out, y)
    assert bce.item() == pytest.approx(torch.nn.functional.binary_cross_entropy_with_logits(out, y).item())
    assert mse.item() == pytest.approx(((torch.sigmoid(out) - y) ** 2).mean().item())


def test_sts_cosine_embedding_loss_is_torchs_on_the_pair():
    u, v = torch.randn(6, 8), torch.randn(6, 8)
    y = torch.tensor([0.0, 1.0, 2.4, 2.5, 4.0, 5.0])
    spec = TASKS["sts"].configure(loss="cosine-embedding")
    head = spec.make_head(8, 0.1)
    target = torch.where(y >= 2.5, 1.0, -1.0)
    expected = torch.nn.functional.cosine_embedding_loss(u, v, target, margin=0.0)
    assert spec.loss(head(u, v), y).item() == pytest.approx(expected.item(), abs=1e-6)
    assert not head.clip_negative  # the loss sees negative cosines; predictions are still clipped to 0..5
    assert spec.decode(head(u, v)).min() >= 0


def test_sts_regression_heads_clip_predictions_to_the_label_range():
    assert TASKS["sts"].configure("cross").decode(torch.tensor([-1.0, 2.0, 7.0])).tolist() == [0.0, 2.0, 5.0]


PAIR_ENCODINGS = [(t, e) for t in ("para", "sts") for e in TASKS[t].encodings]


@pytest.mark.parametrize(("task", "encoding"), PAIR_ENCODINGS)
def test_every_pair_encoding_trains_end_to_end(tiny_model_dir, encoded, task, encoding):
    spec = TASKS[task].configure(encoding, mlp=() if encoding == "bi-cosine" else (8,))
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    model = MultiTaskModel(encoder, [spec], pooling="mean", dropout=0.1)
    splits, special = encoded
    batch = collate(splits[task], np.arange(B), spec.encoding, special, max_length=32)
    out = model(task, batch.inputs)
    assert tuple(out.shape) == (B,)
    spec.loss(out, batch.labels).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in model.shared_parameters())
    if encoding != "bi-cosine" or task == "para":  # a para bi-cosine head learns an affine map of the cosine
        assert all(p.grad is not None for p in model.heads[task].parameters())


def test_sst_label_smoothing_spreads_a_tenth_of_the_target_over_the_classes():
    out, y = torch.tensor([[2.0, 0.0, -1.0, 0.5, 0.0]]), torch.tensor([3.0])
    target = torch.full((1, 5), 0.1 / 5)
    target[0, 3] += 0.9
    expected = -(target * torch.log_softmax(out, -1)).sum()
    torch.testing.assert_close(TASKS["sst"].configure(loss="ce-smooth").loss(out, y), expected)


@pytest.mark.parametrize("task", ["sst", "para"])
def test_class_probabilities_sum_to_one_and_agree_with_the_decoded_prediction(task):
    spec = TASKS[task]
    out = torch.randn(6, spec.n_out).squeeze(-1)
    probs = spec.probabilities(out)
    assert probs.shape == (6, spec.classes)
    torch.testing.assert_close(probs.sum(-1), torch.ones(6))
    assert torch.equal(probs.argmax(-1), spec.decode(out))
