"""Task heads: small modules on top of pooled sentence embeddings.

A head's output is ``[B, n_out]``, squeezed to ``[B]`` when ``n_out == 1`` (one logit or one score).
Which head a task gets follows from its encoding (see :func:`build_head`):

- ``single`` / ``cross``: one pooled embedding -> :class:`MLPHead`;
- ``bi-concat``: two embeddings ``u, v`` -> :class:`ConcatHead` on ``(u, v, |u - v|)`` (Sentence-BERT);
- ``bi-cosine``: two embeddings -> :class:`CosineHead`, ``cos(u, v)`` scaled (Sentence-BERT's regression objective).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def check_dropout(p: float, name: str = "dropout") -> float:
    """``p`` if it is a dropout probability in [0, 1), else ``ValueError`` naming ``name``."""
    if not 0 <= p < 1:
        raise ValueError(f"{name}: must be in [0, 1), got {p}")
    return p


class MLPHead(nn.Module):
    """Dropout, then ``hidden`` Linear+GELU+dropout layers, then a Linear to ``n_out`` outputs.

    With ``hidden=()`` this is the usual linear classifier of BERT fine-tuning.
    """

    def __init__(self, n_in: int, n_out: int, dropout: float, hidden: tuple[int, ...] = ()) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        for width in hidden:
            layers += [nn.Linear(n_in, width), nn.GELU(), nn.Dropout(dropout)]
            n_in = width
        self.layers = nn.Sequential(*layers)
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, pooled: Tensor) -> Tensor:
        out = self.linear(self.layers(pooled))
        return out.squeeze(-1) if out.shape[-1] == 1 else out


class ConcatHead(nn.Module):
    """Bi-encoder classifier on ``(u, v, |u - v|)`` (Reimers & Gurevych 2019, the SNLI objective)."""

    def __init__(self, hidden: int, n_out: int, dropout: float, mlp: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.mlp = MLPHead(3 * hidden, n_out, dropout, mlp)

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        return self.mlp(torch.cat([u, v, (u - v).abs()], dim=-1))


class CosineHead(nn.Module):
    """Bi-encoder similarity ``cos(u, v) * scale`` (Reimers & Gurevych 2019).

    ``clip_negative``: ``relu(cos) * scale``, a score on 0..``scale`` (the STS default: relu(cos)·5 with MSE).
    ``learnable``: ``a * cos + b`` with a learnt affine map instead, e.g. a logit for binary classification.
    Without ``learnable`` the head has no parameters, so "re-initialising" it is a no-op.
    """

    def __init__(self, scale: float = 5.0, clip_negative: bool = True, learnable: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.clip_negative = clip_negative
        self.affine = nn.Linear(1, 1) if learnable else None

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        cos = F.cosine_similarity(u, v, dim=-1)
        if self.affine is not None:
            return self.affine(cos.unsqueeze(-1)).squeeze(-1)
        return (torch.relu(cos) if self.clip_negative else cos) * self.scale


def build_head(
    encoding: str,
    hidden_size: int,
    n_out: int,
    dropout: float,
    mlp: tuple[int, ...] = (),
    cosine_scale: float | None = None,
    clip_negative: bool = True,
) -> nn.Module:
    """The head for ``encoding``: ``single``/``cross`` -> MLP, ``bi-concat`` -> (u, v, |u-v|) MLP, ``bi-cosine`` ->
    cosine times ``cosine_scale`` (a score), or a learnt affine map of the cosine when ``cosine_scale`` is None (a
    classifier's logit)."""
    if encoding in ("single", "cross"):
        return MLPHead(hidden_size, n_out, dropout, mlp)
    if encoding == "bi-concat":
        return ConcatHead(hidden_size, n_out, dropout, mlp)
    if encoding == "bi-cosine":
        return CosineHead(cosine_scale or 1.0, clip_negative, learnable=cosine_scale is None)
    raise ValueError(f"unknown encoding {encoding!r}; expected single, cross, bi-cosine or bi-concat")
