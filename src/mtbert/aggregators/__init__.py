"""Gradient aggregators for multi-task learning.

An aggregator maps a Jacobian ``J`` of shape ``[T, P]`` (one row per task: the gradient of that
task's loss w.r.t. the flattened shared parameters) to an update direction of shape ``[P]``::

    aggregator = make_aggregator("pcgrad", seed=0)
    aggregator.bind(layout, n_tasks)       # once, before training: [(param name, numel), ...]
    direction = aggregator(J, counts)      # counts: [T] samples per task in this step (optional)
    aggregator.last_gramian                # J Jᵀ of that call (float64)
    aggregator.last_stats                  # method-specific diagnostics, described in type(aggregator).stats

Each method registers itself in its own module with ``@register("<name>")`` (``_registry.py``); the imports below
fill the registry, and ``AGGREGATOR_NAMES`` (sorted) is what ``train.grad`` accepts. What each method does, its
scale (a sum, a convex / mean-scaled combination, or weights solving its own equations), its options and its state
are in its class docstring and in docs/methods.md.
"""

from . import _registry
from ._alignedmtl import AlignedMTL
from ._base import Aggregator, GramianWeightedAggregator, Layout, NonFiniteJacobian, Stat
from ._cagrad import CAGrad
from ._conflict_free import ConFIG
from ._dualcone import DualProj, UPGrad
from ._fairgrad import FairGrad
from ._gradvac import GradVac
from ._groups import GROUPINGS, build_groups, group_key
from ._imtlg import IMTLG
from ._lossweights import FAMO, Uncertainty
from ._mgda import MGDA
from ._nashmtl import NashMTL
from ._pcgrad import PCGrad
from ._registry import aggregator_options, make_aggregator, statistic_docs
from ._sum import Sum, Weighted
from ._swpcgrad import SampleWeightedPCGrad

AGGREGATOR_NAMES: tuple[str, ...] = _registry.registered_names()  # after every method module is imported

__all__ = [
    "AGGREGATOR_NAMES",
    "FAMO",
    "GROUPINGS",
    "IMTLG",
    "MGDA",
    "Aggregator",
    "AlignedMTL",
    "CAGrad",
    "ConFIG",
    "DualProj",
    "FairGrad",
    "GradVac",
    "GramianWeightedAggregator",
    "Layout",
    "NashMTL",
    "NonFiniteJacobian",
    "PCGrad",
    "SampleWeightedPCGrad",
    "Stat",
    "Sum",
    "UPGrad",
    "Uncertainty",
    "Weighted",
    "aggregator_options",
    "build_groups",
    "group_key",
    "make_aggregator",
    "statistic_docs",
]
