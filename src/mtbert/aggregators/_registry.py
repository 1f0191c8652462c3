"""Name -> aggregator class registry used to build aggregators from configuration."""

from __future__ import annotations

import inspect
from typing import Any

from ._alignedmtl import AlignedMTL
from ._base import Aggregator
from ._cagrad import CAGrad
from ._config import ConFIG
from ._dualcone import DualProj, UPGrad
from ._fairgrad import FairGrad
from ._gradvac import GradVac
from ._imtlg import IMTLG
from ._lossweights import FAMO, Uncertainty
from ._mgda import MGDA
from ._nashmtl import NashMTL
from ._pcgrad import PCGrad
from ._sum import Sum, Weighted
from ._swpcgrad import SampleWeightedPCGrad

_REGISTRY: dict[str, type[Aggregator]] = {
    "alignedmtl": AlignedMTL,
    "cagrad": CAGrad,
    "config": ConFIG,
    "dualproj": DualProj,
    "fairgrad": FairGrad,
    "famo": FAMO,
    "gradvac": GradVac,
    "imtlg": IMTLG,
    "mgda": MGDA,
    "nashmtl": NashMTL,
    "pcgrad": PCGrad,
    "sum": Sum,
    "swpcgrad": SampleWeightedPCGrad,
    "uncertainty": Uncertainty,
    "upgrad": UPGrad,
    "weighted": Weighted,
}

AGGREGATOR_NAMES: tuple[str, ...] = tuple(sorted(_REGISTRY))


def aggregator_options(name: str) -> tuple[str, ...]:
    """Returns the option names accepted by aggregator ``name`` (sorted)."""
    cls = _lookup(name)
    params = inspect.signature(cls.__init__).parameters
    return tuple(sorted(p for p in params if p != "self"))


def statistic_docs() -> dict[str, str]:
    """What each key of ``last_stats`` means, over every registered method; where methods give one key different
    meanings, each meaning names its methods."""
    meanings: dict[str, dict[str, list[str]]] = {}
    for name, cls in sorted(_REGISTRY.items()):
        for key, stat in cls.stats.items():
            meanings.setdefault(key, {}).setdefault(stat.doc, []).append(name)
    out = {}
    for key, docs in meanings.items():
        out[key] = next(iter(docs)) if len(docs) == 1 else " / ".join(f"{d} ({', '.join(n)})" for d, n in docs.items())
    return out


def make_aggregator(name: str, **options: Any) -> Aggregator:
    """Builds the aggregator registered under ``name`` with the given options.

    :raises ValueError: if ``name`` is unknown (the message lists every valid name), if an option is
        not accepted by that aggregator (the message lists the accepted ones), if a required option
        is missing, or if an option's value is invalid (the message names the option and the
        allowed values or range).
    """
    cls = _lookup(name)
    allowed = aggregator_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        allowed_str = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"Unknown option(s) {unknown} for aggregator {name!r}; allowed options: {allowed_str}.")
    params = inspect.signature(cls.__init__).parameters
    missing = sorted(p for p, spec in params.items() if p != "self" and spec.default is spec.empty and p not in options)
    if missing:
        raise ValueError(f"Aggregator {name!r} requires option(s) {missing}.")
    return cls(**options)


def _lookup(name: str) -> type[Aggregator]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"Unknown aggregator {name!r}; valid names: {', '.join(AGGREGATOR_NAMES)}.")
    return _REGISTRY[name]
