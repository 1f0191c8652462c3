"""Tests for mtbert.heads: what each head computes and which head each encoding gets."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mtbert.heads import ConcatHead, CosineHead, MLPHead, build_head


def test_mlp_head_without_hidden_layers_is_one_linear_map():
    head = MLPHead(8, 5, dropout=0.1)
    assert [type(m) for m in head.modules() if isinstance(m, nn.Linear | nn.GELU)] == [nn.Linear]
    head.eval()
    x = torch.randn(3, 8)
    assert torch.allclose(head(x), head.linear(x))
    assert head(x).shape == (3, 5)


def test_mlp_head_hidden_sizes_and_single_output_squeezed():
    head = MLPHead(8, 1, dropout=0.0, hidden=(6, 4))
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 6), (6, 4), (4, 1)]
    assert sum(isinstance(m, nn.GELU) for m in head.modules()) == 2
    x = torch.randn(3, 8)
    expected = linears[2](F.gelu(linears[1](F.gelu(linears[0](x))))).squeeze(-1)
    assert torch.allclose(head(x), expected)
    assert head(x).shape == (3,)


def test_mlp_head_dropout_is_active_in_training_only():
    head = MLPHead(64, 2, dropout=0.5)
    x = torch.ones(4, 64)
    head.train()
    assert not torch.equal(head(x), head(x))
    head.eval()
    assert torch.equal(head(x), head(x))


def test_concat_head_reads_u_v_and_their_absolute_difference():
    head = ConcatHead(hidden=2, n_out=1, dropout=0.0)
    with torch.no_grad():  # weights that read only |u - v|
        head.mlp.linear.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0, 1.0]]))
        head.mlp.linear.bias.zero_()
    u, v = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[3.0, -1.0], [0.0, 5.0]])
    assert head(u, v).tolist() == pytest.approx([5.0, 5.0])
    assert head(v, u).tolist() == pytest.approx([5.0, 5.0])
    assert head.mlp.linear.in_features == 6


def test_cosine_head_clipped_raw_and_learnable():
    u = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    v = torch.tensor([[2.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    cos = [1.0, -1.0, 2**-0.5]
    assert CosineHead(5.0)(u, v).tolist() == pytest.approx([5.0, 0.0, 5 * 2**-0.5])
    assert CosineHead(5.0, clip_negative=False)(u, v).tolist() == pytest.approx([5 * c for c in cos])
    learnable = CosineHead(learnable=True)
    with torch.no_grad():
        learnable.affine.weight.fill_(3.0)
        learnable.affine.bias.fill_(-1.0)
    assert learnable(u, v).tolist() == pytest.approx([3 * c - 1 for c in cos])
    assert list(CosineHead(5.0).parameters()) == []


@pytest.mark.parametrize(
    ("encoding", "scale", "kind"),
    [
        ("single", None, MLPHead),
        ("cross", None, MLPHead),
        ("bi-concat", None, ConcatHead),
        ("bi-cosine", 5.0, CosineHead),
        ("bi-cosine", None, CosineHead),
    ],
)
def test_build_head_follows_the_encoding(encoding, scale, kind):
    head = build_head(encoding, 16, 1, 0.1, cosine_scale=scale)
    assert isinstance(head, kind)
    if kind is CosineHead:
        assert (head.affine is None) == (scale is not None)  # no scale given: a learnt logit


def test_build_head_rejects_an_unknown_encoding():
    with pytest.raises(ValueError, match="unknown encoding 'bi'"):
        build_head("bi", 16, 1, 0.1)
