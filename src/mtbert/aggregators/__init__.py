"""Gradient aggregators for multi-task learning.

An aggregator maps a Jacobian ``J`` of shape ``[T, P]`` (one row per task: the gradient of that
task's loss w.r.t. the flattened shared parameters) to an update direction of shape ``[P]``::

    aggregator = make_aggregator("pcgrad", seed=0)
    aggregator.bind(layout, n_tasks)       # once, before training: [(param name, numel), ...]
    direction = aggregator(J, counts)      # counts: [T] samples per task in this step (optional)
    aggregator.last_gramian                # J Jᵀ of that call
    aggregator.last_stats                  # method-specific diagnostics

Names (``AGGREGATOR_NAMES``): ``alignedmtl``, ``gradvac``, ``imtlg``, ``mgda``, ``pcgrad``, ``sum``,
``swpcgrad``, ``weighted``. ``sum``, ``weighted``, ``pcgrad``, ``swpcgrad`` and ``gradvac`` output a
sum of (modified) task gradients; ``mgda``, ``imtlg`` and ``alignedmtl`` (from torchjd) output a
convex / mean-scaled combination.
"""

from ._alignedmtl import AlignedMTL
from ._base import Aggregator, GramianWeightedAggregator, Layout
from ._gradvac import GradVac
from ._groups import GROUPINGS, build_groups, group_key
from ._imtlg import IMTLG
from ._mgda import MGDA
from ._pcgrad import PCGrad
from ._registry import AGGREGATOR_NAMES, aggregator_options, make_aggregator
from ._sum import Sum, Weighted
from ._swpcgrad import SampleWeightedPCGrad

__all__ = [
    "AGGREGATOR_NAMES",
    "GROUPINGS",
    "IMTLG",
    "MGDA",
    "Aggregator",
    "AlignedMTL",
    "GradVac",
    "GramianWeightedAggregator",
    "Layout",
    "PCGrad",
    "SampleWeightedPCGrad",
    "Sum",
    "Weighted",
    "aggregator_options",
    "build_groups",
    "group_key",
    "make_aggregator",
]
