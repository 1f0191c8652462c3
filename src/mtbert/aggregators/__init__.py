"""Gradient aggregators for multi-task learning.

An aggregator maps a Jacobian ``J`` of shape ``[T, P]`` (one row per task: the gradient of that
task's loss w.r.t. the flattened shared parameters) to an update direction of shape ``[P]``::

    aggregator = make_aggregator("pcgrad", seed=0)
    aggregator.bind(layout, n_tasks)       # once, before training: [(param name, numel), ...]
    direction = aggregator(J, counts)      # counts: [T] samples per task in this step (optional)
    aggregator.last_gramian                # J Jᵀ of that call (float64)
    aggregator.last_stats                  # method-specific diagnostics, described in type(aggregator).stats

Names (``AGGREGATOR_NAMES``): ``alignedmtl``, ``cagrad``, ``config``, ``dualproj``, ``fairgrad``, ``famo``,
``gradvac``, ``imtlg``, ``mgda``, ``nashmtl``, ``pcgrad``, ``sum``, ``swpcgrad``, ``uncertainty``, ``upgrad``,
``weighted``. ``sum``, ``weighted``, ``pcgrad``, ``swpcgrad``, ``gradvac``, ``config`` and ``uncertainty``
output a sum of (modified or weighted) task gradients; ``mgda``, ``imtlg``, ``alignedmtl``, ``upgrad``,
``dualproj``, ``cagrad``, ``famo`` a convex / mean-scaled combination; ``nashmtl`` and ``fairgrad`` weights
that solve their own equations. ``uncertainty`` and ``famo`` weigh by the task losses (``requires_losses``)
and keep state; ``nashmtl`` and ``gradvac`` keep state too; all of it is in ``state_dict``.
"""

from ._alignedmtl import AlignedMTL
from ._base import Aggregator, GramianWeightedAggregator, Layout, NonFiniteJacobian, Stat
from ._cagrad import CAGrad
from ._config import ConFIG
from ._dualcone import DualProj, UPGrad
from ._fairgrad import FairGrad
from ._gradvac import GradVac
from ._groups import GROUPINGS, build_groups, group_key
from ._imtlg import IMTLG
from ._lossweights import FAMO, Uncertainty
from ._mgda import MGDA
from ._nashmtl import NashMTL
from ._pcgrad import PCGrad
from ._registry import AGGREGATOR_NAMES, aggregator_options, make_aggregator, statistic_docs
from ._sum import Sum, Weighted
from ._swpcgrad import SampleWeightedPCGrad

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
