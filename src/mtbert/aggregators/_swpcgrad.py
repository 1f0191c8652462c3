"""Sample-weighted PCGrad: PCGrad on per-sample-normalised task gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from ._pcgrad import PCGrad, pcgrad_coefficients
from ._registry import register


@register("swpcgrad")
class SampleWeightedPCGrad(PCGrad):
    """Sample-weighted PCGrad: PCGrad (Yu et al., "Gradient Surgery for Multi-Task Learning",
    NeurIPS 2020, https://arxiv.org/abs/2001.06782, Algorithm 1) applied to the rows
    ``g_i / n_i``, where ``n_i = counts[i]`` is the number of samples of task ``i`` in the step
    (so a row holding a *summed* per-sample loss gradient becomes a per-sample mean).

    Rows with ``n_i = 0`` are treated as absent: they get weight 0 and are excluded from the
    projections (PCGrad runs on the present rows only). Output: ``Σ_{i present} (g_i / n_i)^PC``.
    Implemented on the Gramian: with ``D = diag(1/n_i)``, the scaled Gramian is ``D G D`` and the
    output is ``(w D) @ J``, so no scaled copy of ``J`` is made.

    Requires ``counts`` (finite, non-negative). Random orders as in
    :class:`~mtbert.aggregators._pcgrad.PCGrad` (with all rows present, the same seed gives the
    same orders as ``pcgrad``).

    ``last_stats``: ``weights`` ``[T]`` (applied to the unscaled ``J``); ``corrections`` ``[T, T]``.

    :param seed: Seed of the generator drawing the orders (integer in ``[0, 2**63 - 1]``, default 0).
    """

    requires_counts = True

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        assert counts is not None  # enforced by Aggregator._check_inputs
        if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
            raise ValueError(f"counts must be finite and non-negative. Found counts={counts.tolist()}.")
        n_tasks = gramian.shape[0]
        present = torch.nonzero(counts > 0).flatten()
        scale = 1.0 / counts[present]
        sub_gramian = gramian[present][:, present] * scale[:, None] * scale[None, :]
        orders = self._draw_orders(len(present))[0]
        sub_weights, sub_corrections = pcgrad_coefficients(sub_gramian, orders)

        weights = torch.zeros(n_tasks, dtype=torch.float64)
        weights[present] = sub_weights * scale
        corrections = torch.zeros(n_tasks, n_tasks, dtype=torch.int64)
        corrections[present[:, None], present[None, :]] = sub_corrections
        self.last_stats["corrections"] = corrections
        return weights
