"""Tests for mtbert.pals: the properties of Projected Attention Layers (Stickland & Murray 2019) on a tiny BERT."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from transformers import BertConfig, BertModel

from mtbert.pals import ProjectedAttentionLayers

TASKS = ["a", "b"]


@pytest.fixture
def encoder() -> BertModel:
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100
    )
    return BertModel(config, add_pooling_layer=False).eval()


def make_pals(seed: int = 1, decoder: bool = True) -> ProjectedAttentionLayers:
    """PALs of size 8 with 2 heads; ``decoder`` gives V_D non-zero weights so that the PALs have an effect."""
    torch.manual_seed(seed)
    pals = ProjectedAttentionLayers(TASKS, hidden=32, n_layers=2, size=8, heads=2, dropout=0.0).eval()
    if decoder:
        for linear in pals.decode.values():
            nn.init.normal_(linear.weight, std=0.5)
            nn.init.normal_(linear.bias, std=0.5)
    return pals


def batch() -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 100, (3, 7), generator=generator)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 4:] = 0
    mask[2, 2:] = 0
    return ids, mask


def run(encoder: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    return encoder(input_ids=ids, attention_mask=mask).last_hidden_state


def test_fresh_pals_leave_the_encoder_unchanged(encoder):
    ids, mask = batch()
    with torch.no_grad():
        plain = run(encoder, ids, mask)
        pals = make_pals(decoder=False)
        pals.attach(encoder)
        outside = run(encoder, ids, mask)
        with pals.active("a", mask):
            inside = run(encoder, ids, mask)
    torch.testing.assert_close(outside, plain)
    torch.testing.assert_close(inside, plain)


def test_active_pal_changes_the_output_per_task(encoder):
    ids, mask = batch()
    pals = make_pals()
    pals.attach(encoder)
    with torch.no_grad():
        outside = run(encoder, ids, mask)
        with pals.active("a", mask):
            a = run(encoder, ids, mask)
        with pals.active("b", mask):
            b = run(encoder, ids, mask)
        with pals.active("no-pal", mask):
            other = run(encoder, ids, mask)
    assert not torch.allclose(a, outside, atol=1e-3)
    assert not torch.allclose(a, b, atol=1e-3)
    torch.testing.assert_close(other, outside)


def test_only_the_active_task_pal_gets_gradients(encoder):
    ids, mask = batch()
    pals = make_pals()
    pals.attach(encoder)
    with pals.active("a", mask):
        run(encoder, ids, mask).pow(2).sum().backward()
    for linear in (pals.encode["a"], pals.decode["a"]):
        assert linear.weight.grad is not None and linear.weight.grad.abs().sum() > 0
    for layer in pals.attention["a"]:
        assert layer.in_proj_weight.grad.abs().sum() > 0
        assert layer.out_proj.weight.grad.abs().sum() > 0
    for name, parameter in pals.named_parameters():
        if ".b." in f".{name}.":
            assert parameter.grad is None or not parameter.grad.any(), name


def test_pal_parameters_stay_out_of_the_encoder(encoder):
    keys = list(encoder.state_dict())
    names = {n for n, _ in encoder.named_parameters()}
    pals = make_pals()
    pals.attach(encoder)
    assert list(encoder.state_dict()) == keys
    assert {n for n, _ in encoder.named_parameters()} == names
    pal_ids = {id(p) for p in pals.parameters()}
    assert not pal_ids & {id(p) for p in encoder.parameters()}
    assert "encode.a.weight" in dict(pals.named_parameters())
    assert "attention.b.1.in_proj_weight" in dict(pals.named_parameters())


def test_padding_positions_do_not_leak_through_the_pal(encoder):
    ids, mask = batch()
    changed = ids.clone()
    changed[mask == 0] = torch.randint(1, 100, (int((mask == 0).sum()),), generator=torch.Generator().manual_seed(3))
    assert not torch.equal(changed, ids)
    pals = make_pals()
    pals.attach(encoder)
    with torch.no_grad(), pals.active("a", mask):
        before = run(encoder, ids, mask)
        after = run(encoder, changed, mask)
    keep = mask.bool()
    torch.testing.assert_close(after[keep], before[keep])


def test_attaching_twice_applies_the_pal_once(encoder):
    ids, mask = batch()
    pals = make_pals()
    pals.attach(encoder)
    with torch.no_grad(), pals.active("a", mask):
        once = run(encoder, ids, mask)
        pals.attach(encoder)
        twice = run(encoder, ids, mask)
    torch.testing.assert_close(twice, once)


def test_bad_shapes_raise(encoder):
    with pytest.raises(ValueError, match=r"pals: .*divisible by pal_heads \(4\), got 10"):
        ProjectedAttentionLayers(TASKS, hidden=32, n_layers=2, size=10, heads=4)
    with pytest.raises(ValueError, match="pals: a PAL needs a size >= 1"):
        ProjectedAttentionLayers(TASKS, hidden=32, n_layers=2, size=0, heads=4)
    with pytest.raises(ValueError, match="3 layers but the encoder has 2"):
        ProjectedAttentionLayers(TASKS, hidden=32, n_layers=3, size=8, heads=2).attach(encoder)
    with pytest.raises(ValueError, match="hidden size 16 but the encoder has 32"):
        ProjectedAttentionLayers(TASKS, hidden=16, n_layers=2, size=8, heads=2).attach(encoder)


def test_active_state_is_cleared_after_the_block(encoder):
    ids, mask = batch()
    pals = make_pals()
    pals.attach(encoder)
    with torch.no_grad():
        plain = run(encoder, ids, mask)
        with pals.active("a", mask):
            pass
        torch.testing.assert_close(run(encoder, ids, mask), plain)
        with pytest.raises(RuntimeError, match="boom"), pals.active("a", mask):
            raise RuntimeError("boom")
        torch.testing.assert_close(run(encoder, ids, mask), plain)


def test_works_under_autocast(encoder):
    ids, mask = batch()
    pals = make_pals()
    pals.attach(encoder)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain = run(encoder, ids, mask)
        with pals.active("a", mask):
            out = run(encoder, ids, mask)
    assert torch.isfinite(out).all()
    assert not torch.allclose(out.float(), plain.float(), atol=1e-2)


def test_keyword_call_of_the_attention_output_gets_the_pal_too(encoder):
    _, mask = batch()
    pals = make_pals()
    pals.attach(encoder)
    output = encoder.encoder.layer[0].attention.output
    torch.manual_seed(4)
    attended, x = torch.randn(3, 7, 32), torch.randn(3, 7, 32)
    with torch.no_grad(), pals.active("a", mask):
        positional = output(attended, x)
        keyword = output(hidden_states=attended, input_tensor=x)
    torch.testing.assert_close(keyword, positional)
    assert not torch.allclose(positional, output(attended, x), atol=1e-3)


def test_a_row_of_padding_only_stays_finite(encoder):
    ids, mask = batch()
    mask[2] = 0
    pals = make_pals()
    pals.attach(encoder)
    with torch.no_grad(), pals.active("a", mask):
        assert torch.isfinite(run(encoder, ids, mask)).all()


def test_load_task_copies_one_tasks_pal_and_nothing_else(encoder):
    source, target = make_pals(seed=1), make_pals(seed=2)
    before_b = {k: v.clone() for k, v in target.state_dict().items() if ".b." in k or k.endswith(".b")}
    target.load_task("a", source)
    for key, value in target.state_dict().items():
        if key.split(".")[1] == "a":
            assert torch.equal(value, source.state_dict()[key]), key
        else:
            assert torch.equal(value, before_b[key]), key
    target.load_task("a", None)  # a pretrained model without PALs: nothing to copy
