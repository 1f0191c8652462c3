"""Tests for mtbert.model: pooling, save / load round trip, the embedded model and parameter groups."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _tasks import TASKS
from transformers import AutoModel

from mtbert.config import ModelConfig
from mtbert.data.encoded import Batch
from mtbert.model import MultiTaskModel, build_model, for_finetuning, load_model, pool
from mtbert.pretrained import resolve_model_name


@pytest.fixture
def model(tiny_model_dir) -> MultiTaskModel:
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    return MultiTaskModel(encoder, list(TASKS.values()), pooling="cls", dropout=0.2)


def inputs() -> dict[str, torch.Tensor]:
    """Four rows (two pairs for bi-encoded tasks), two of them padded."""
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1000, 2000, (4, 9), generator=generator)
    mask = torch.ones(4, 9, dtype=torch.long)
    mask[1, 5:] = 0
    mask[3, 3:] = 0
    input_ids[mask == 0] = 0
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(mask)}


# --- pool -----------------------------------------------------------------------------------------------


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0], [7.0, 8.0]]


def test_mean_pooling_of_an_all_padding_row_is_zero_not_nan():
    hidden = torch.ones(1, 3, 2)
    assert pool(hidden, torch.zeros(1, 3, dtype=torch.long), "mean").tolist() == [[0.0, 0.0]]


def test_cls_pooling_takes_position_zero():
    hidden = torch.arange(12.0).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]


def test_model_mean_pooling_is_independent_of_padding(tiny_model_dir):
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    model = MultiTaskModel(encoder, list(TASKS.values()), pooling="mean", dropout=0.1).eval()
    short = {k: v[:1, :5] for k, v in inputs().items()}
    padded = {k: torch.cat([v, torch.zeros(1, 4, dtype=v.dtype)], dim=1) for k, v in short.items()}
    with torch.no_grad():
        assert torch.allclose(model.embed("sst", short), model.embed("sst", padded), atol=1e-5)


# --- save / load ----------------------------------------------------------------------------------------


def test_save_then_load_gives_identical_outputs(model, tmp_path):
    folder = tmp_path / "models" / "multitask"
    with torch.no_grad():
        for head in model.heads.values():  # heads away from their fresh init, so a lost head would show
            for p in head.parameters():
                p.add_(torch.randn_like(p))
    model.save(folder)
    loaded = load_model(folder)
    model.eval()
    loaded.eval()
    assert loaded.pooling == "cls" and loaded.dropout == 0.2
    assert list(loaded.heads) == list(TASKS)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    with torch.no_grad():
        for task in TASKS:
            assert torch.equal(loaded(task, inputs()), model(task, inputs())), task


def test_save_writes_safetensors_and_no_pickle(model, tmp_path):
    model.save(tmp_path)
    names = {p.name for p in Path(tmp_path).iterdir()}
    assert "model.safetensors" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"))]
    assert (tmp_path / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors: 8-byte size, JSON header


def test_load_keeps_a_subset_of_tasks(tiny_model_dir, tmp_path):
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    MultiTaskModel(encoder, [TASKS["sts"]], pooling="mean", dropout=0.1).save(tmp_path)
    assert list(load_model(tmp_path).heads) == ["sts"]


# --- embedded model and parameters ----------------------------------------------------------------------


def test_embedded_model_resolves_to_a_folder_with_a_config():
    folder = Path(resolve_model_name("embedded"))
    assert folder.is_dir()
    assert (folder / "config.json").is_file()


def test_other_names_are_kept_as_they_are():
    assert resolve_model_name("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model_name("/some/folder") == "/some/folder"


def test_shared_parameters_are_the_encoder_and_exclude_heads(model):
    shared = model.shared_parameters()
    assert shared
    assert all(name.startswith("encoder.") for name, _ in shared)
    shared_ids = {id(p) for _, p in shared}
    head_ids = {id(p) for p in model.heads.parameters()}
    assert head_ids and not shared_ids & head_ids
    assert shared_ids == {id(p) for p in model.encoder.parameters()}
    assert {id(p) for p in model.head_parameters()} == head_ids


def test_frozen_parameters_are_not_shared(model):
    model.encoder.get_input_embeddings().weight.requires_grad_(False)
    names = [name for name, _ in model.shared_parameters()]
    assert "encoder.embeddings.word_embeddings.weight" not in names
    assert len(names) == sum(1 for p in model.encoder.parameters() if p.requires_grad)


# --- configured heads, PALs, frozen encoder -----------------------------------------------------------------


@pytest.fixture
def pal_model(tiny_model_dir) -> MultiTaskModel:
    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    tasks = [TASKS["sst"], TASKS["para"].configure("bi-concat", mlp=(8,)), TASKS["sts"].configure("cross")]
    model = MultiTaskModel(encoder, tasks, pooling="mean", dropout=0.1, pals=8, pal_heads=2)
    with torch.no_grad():  # PAL decoders start at zero; move them so that the PALs change the output
        for p in model.pals.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_pal_parameters_are_neither_shared_nor_heads(pal_model):
    shared = {id(p) for _, p in pal_model.shared_parameters()}
    pals = {id(p) for p in pal_model.pal_parameters()}
    heads = {id(p) for p in pal_model.head_parameters()}
    assert pals and not pals & shared and not pals & heads
    assert shared == {id(p) for p in pal_model.encoder.parameters()}


def test_task_parameters_split_heads_and_pals_by_task(pal_model):
    """Each task's own parameters (a loss-weighting method weighs them) are its head and its PAL, and together the
    tasks' own parameters are exactly the heads and the PALs."""
    own = {task: {id(p) for p in pal_model.task_parameters(task)} for task in pal_model.specs}
    assert all(own.values())
    assert sum(len(ids) for ids in own.values()) == len(set().union(*own.values()))  # disjoint
    assert set().union(*own.values()) == {id(p) for p in pal_model.head_parameters() + pal_model.pal_parameters()}
    assert {id(p) for p in pal_model.heads["sst"].parameters()} <= own["sst"]
    assert {id(p) for p in pal_model.pals.encode["sst"].parameters()} <= own["sst"]


def test_only_the_active_tasks_pal_gets_a_gradient(pal_model):
    pal_model.train()
    pal_model("sst", inputs()).sum().backward()
    for name, p in pal_model.pals.named_parameters():
        got = p.grad is not None and p.grad.abs().sum() > 0
        assert got == (".sst" in name), name


def test_save_then_load_keeps_heads_and_pals(pal_model, tmp_path):
    pal_model.save(tmp_path)
    loaded = load_model(tmp_path)
    assert {n: s.options() for n, s in loaded.specs.items()} == {n: s.options() for n, s in pal_model.specs.items()}
    assert loaded.pal_size == 8
    pal_model.eval()
    loaded.eval()
    with torch.no_grad():
        for task in TASKS:
            assert torch.equal(loaded(task, inputs()), pal_model(task, inputs())), task


def test_frozen_encoder_passes_no_gradient_to_encoder_or_pals(pal_model):
    pal_model.train()
    pal_model.encoder_frozen = True
    pal_model("para", inputs()).sum().backward()
    assert all(p.grad is None for p in pal_model.encoder.parameters())
    assert all(p.grad is None for p in pal_model.pal_parameters())
    assert all(p.grad is not None for p in pal_model.heads["para"].parameters())


# --- what the model owns: optimizer groups, task losses, the fine-tuning copy ---------------------------------


def test_param_groups_give_each_module_kind_its_rate_and_decay_no_bias_or_layernorm(pal_model):
    groups = pal_model.param_groups(lr=1e-4, head_lr=2e-3, pal_lr=3e-2, weight_decay=0.5)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len(by_param) == sum(1 for p in pal_model.parameters() if p.requires_grad)
    for name, p in pal_model.named_parameters():
        if not p.requires_grad:
            continue
        lr = 2e-3 if name.startswith("heads.") else 3e-2 if name.startswith("pals.") else 1e-4
        decayed = p.ndim >= 2 and "LayerNorm" not in name and not name.startswith("heads.")
        assert by_param[id(p)] == (lr, 0.5 if decayed else 0.0), name


def test_layer_decay_scales_each_encoder_layer_by_its_depth_from_the_top(pal_model):
    layers = pal_model.encoder.config.num_hidden_layers
    groups = pal_model.param_groups(lr=1.0, head_lr=2e-3, pal_lr=3e-2, weight_decay=0.5, layer_decay=0.5)
    by_param = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert len(by_param) == sum(1 for p in pal_model.parameters() if p.requires_grad)
    for name, p in pal_model.named_parameters():
        if not p.requires_grad:
            continue
        decayed = p.ndim >= 2 and "LayerNorm" not in name and not name.startswith("heads.")
        if name.startswith("encoder.encoder.layer."):
            depth = int(name.split(".")[3]) + 1  # layer i sits i + 1 above the embeddings
            assert by_param[id(p)] == (0.5 ** (layers - depth), 0.5 if decayed else 0.0), name
        elif name.startswith("encoder.embeddings."):
            assert by_param[id(p)][0] == 0.5**layers, name
        else:  # heads and PALs keep their own rates
            assert by_param[id(p)][0] == (2e-3 if name.startswith("heads.") else 3e-2), name
    top = [
        g["lr"]
        for g in groups
        if any(p is q for p in g["params"] for q in pal_model.encoder.encoder.layer[-1].parameters())
    ]
    assert set(top) == {1.0}


def test_frozen_layers_get_no_gradient_and_the_rest_do(tiny_model_dir):
    cfg = ModelConfig(str(tiny_model_dir), "mean", 32, 0.1, False, {}, pals=0, pal_heads=2)
    model = build_model(cfg, [TASKS["sst"]], seed=0)
    model.freeze_lower_layers(1)
    model.task_loss("sst", Batch(inputs(), torch.tensor([0.0, 3.0, 4.0, 1.0]), 4)).backward()
    for name, p in model.named_parameters():
        frozen = name.startswith(("encoder.embeddings.", "encoder.encoder.layer.0."))
        assert p.requires_grad is not frozen and (p.grad is None) is frozen, name
    assert not any("layer.0." in name or "embeddings" in name for name, _ in model.shared_parameters())


def test_task_loss_is_the_tasks_loss_on_its_head_output(model):
    model.eval()  # no dropout: both computations see the same network
    batch = Batch(inputs(), torch.tensor([0.0, 3.0, 4.0, 1.0]), 4)
    expected = torch.nn.functional.cross_entropy(model("sst", batch.inputs), batch.labels.long())
    torch.testing.assert_close(model.task_loss("sst", batch), expected)


def test_the_finetuning_copy_takes_encoder_and_pal_and_a_seeded_fresh_head(pal_model, tiny_model_dir):
    cfg = ModelConfig(str(tiny_model_dir), "mean", 32, 0.1, False, {}, pals=8, pal_heads=2)
    with torch.no_grad():
        for p in pal_model.parameters():
            p.add_(0.01)  # the "pretrained" model differs from a fresh one everywhere
    spec = pal_model.specs["sst"]
    a, b = (for_finetuning(pal_model, cfg, spec, seed=5) for _ in range(2))
    other = for_finetuning(pal_model, cfg, spec, seed=6)
    for key, value in pal_model.encoder.state_dict().items():
        assert torch.equal(a.encoder.state_dict()[key], value), key
    for key, value in a.pals.state_dict().items():
        if key.startswith(("encode.sst", "decode.sst", "attention.sst")):
            assert torch.equal(value, pal_model.pals.state_dict()[key]), key
    assert list(a.heads) == ["sst"]
    assert torch.equal(a.heads["sst"].linear.weight, b.heads["sst"].linear.weight)  # seeded
    assert not torch.equal(a.heads["sst"].linear.weight, other.heads["sst"].linear.weight)
    assert not torch.equal(a.heads["sst"].linear.weight, pal_model.heads["sst"].linear.weight)  # re-initialised
    assert torch.all(a.heads["sst"].linear.bias == 0)
