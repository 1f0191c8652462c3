"""Task heads: small modules on top of pooled sentence embeddings."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class LinearHead(nn.Module):
    """Dropout then a linear map from one pooled embedding [B, H] to ``n_out`` logits [B, n_out]."""

    def __init__(self, hidden: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, n_out)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.linear(self.dropout(pooled))


class CosineHead(nn.Module):
    """Bi-encoder similarity on a 0..``scale`` range: ``relu(cos(u, v)) * scale`` (Reimers & Gurevych 2019).

    It has no parameters, so "re-initialising" it is a no-op.
    """

    def __init__(self, scale: float = 5.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        return torch.relu(F.cosine_similarity(u, v, dim=-1)) * self.scale
