"""Adapter exposing a torchjd ``Weighting`` of the Gramian as one of our aggregators."""

from __future__ import annotations

from torch import Tensor
from torchjd.aggregation import Weighting

from ._base import GramianWeightedAggregator


class TorchJDGramianWeighted(GramianWeightedAggregator):
    """Aggregator whose weights come from a torchjd Gramian weighting (e.g. ``MGDAWeighting``).

    The weighting is called once per step on the float64 CPU Gramian computed by the base class,
    so the Gramian is not recomputed and the output is one ``w @ J``.
    """

    def __init__(self, weighting: Weighting) -> None:
        super().__init__()
        self.weighting = weighting

    def weights(self, gramian: Tensor, counts: Tensor | None) -> Tensor:
        return self.weighting(gramian).detach().to(dtype=gramian.dtype, device=gramian.device)
