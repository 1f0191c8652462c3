"""PCGrad: projecting conflicting gradients (Yu et al., 2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from ._base import GramianWeightedAggregator, RandomOrderMixin, Stat
from ._registry import register


def pcgrad_coefficients(gramian: Tensor, orders: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """Runs Algorithm 1 of PCGrad on the Gramian only.

    Each surgered gradient is tracked as a combination of the original ones,
    ``g_i^PC = Σ_k c_k g_k``, so ``g_i^PC · g_j = Σ_k c_k G[k, j]`` and the projection
    ``g_i^PC -= (g_i^PC · g_j) / ||g_j||² g_j`` becomes ``c_j -= (c · G[:, j]) / G[j, j]``.

    :param gramian: The ``[T, T]`` Gramian ``J Jᵀ`` (any float dtype; used as Python floats).
    :param orders: For each task ``i``, the order in which the other tasks ``j`` are visited.
    :return: ``(weights, corrections)``: the ``[T]`` float64 weights such that
        ``Σ_i g_i^PC = weights @ J``, and the ``[T, T]`` int64 0/1 matrix of the ordered pairs
        ``(i, j)`` for which a projection happened.
    """
    G = gramian.tolist()
    n = len(G)
    weights = [0.0] * n
    corrections = [[0] * n for _ in range(n)]
    for i in range(n):
        c = [0.0] * n
        c[i] = 1.0
        for j in orders[i]:
            dot = sum(c[k] * G[k][j] for k in range(n))
            if dot < 0.0 and G[j][j] > 0.0:
                c[j] -= dot / G[j][j]
                corrections[i][j] = 1
        for k in range(n):
            weights[k] += c[k]
    return torch.tensor(weights, dtype=torch.float64), torch.tensor(corrections, dtype=torch.int64)


@register("pcgrad")
class PCGrad(RandomOrderMixin, GramianWeightedAggregator):
    """PCGrad, Algorithm 1 of Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020
    (https://arxiv.org/abs/2001.06782).

    For each task ``i``, ``g_i^PC`` starts as ``g_i``; for each other task ``j`` in a random order,
    if ``g_i^PC · g_j < 0`` then ``g_i^PC -= (g_i^PC · g_j) / ||g_j||² g_j`` (projection onto the
    normal plane of the *original* ``g_j``). The output is ``Σ_i g_i^PC`` (a sum, as in the paper;
    not a mean). Computed as a weighting of the Gramian (as in torchjd's ``PCGradWeighting``), so
    the output is one ``w @ J``.

    The random orders come from a generator owned by the aggregator (state in the buffer
    ``rng_state``, saved in ``state_dict``), so results do not depend on the global RNG and a
    resumed run continues identically. ``reset()`` re-seeds it.

    ``last_stats``: ``weights`` ``[T]``; ``corrections`` ``[T, T]`` 0/1, pair ``(i, j)`` projected.

    :param seed: Seed of the generator drawing the orders (integer in ``[0, 2**63 - 1]``, default 0).
    """

    stats: ClassVar[dict[str, Stat]] = {
        **GramianWeightedAggregator.stats,
        "corrections": Stat("pair", "1 when task i's gradient was projected onto the normal plane of task j's"),
    }

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self._init_rng(seed)

    def reset(self) -> None:
        self._reset_rng()

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        orders = self._draw_orders(gramian.shape[0])[0]
        weights, corrections = pcgrad_coefficients(gramian, orders)
        self.last_stats["corrections"] = corrections
        return weights

    def extra_repr(self) -> str:
        return f"seed={self.seed}"
