"""Name -> aggregator class registry used to build aggregators from configuration.

Each method registers itself where it is defined, with ``@register("<name>")`` on its class; importing the
package (``aggregators/__init__.py`` imports every method module) fills the registry. Nothing here names a method.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from ._base import Aggregator

A = TypeVar("A", bound=type[Aggregator])

_REGISTRY: dict[str, type[Aggregator]] = {}


def register(name: str) -> Callable[[A], A]:
    """Class decorator: makes the aggregator class available as ``train.grad: <name>``.

    Its options are the keyword arguments of its ``__init__`` (read by :func:`aggregator_options`).

    :raises ValueError: if ``name`` is taken by another class, or is not a lower-case identifier.
    """

    def add(cls: A) -> A:
        if not (name.isidentifier() and name == name.lower()):
            raise ValueError(f"Aggregator name {name!r} must be a lower-case identifier.")
        if not (isinstance(cls, type) and issubclass(cls, Aggregator)):
            raise ValueError(f"@register({name!r}) needs an Aggregator subclass, got {cls!r}.")
        taken = _REGISTRY.get(name)
        if taken is not None and taken is not cls:
            raise ValueError(f"Aggregator name {name!r} is taken by {taken.__qualname__}.")
        _REGISTRY[name] = cls
        return cls

    return add


def registered_names() -> tuple[str, ...]:
    """The names registered so far, sorted."""
    return tuple(sorted(_REGISTRY))


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
        raise ValueError(f"Unknown aggregator {name!r}; valid names: {', '.join(registered_names())}.")
    return _REGISTRY[name]
