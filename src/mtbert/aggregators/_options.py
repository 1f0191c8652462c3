"""Checks of aggregator options: each raises ``ValueError`` naming the option, the allowed range and the value."""

from __future__ import annotations

import math
from typing import Any


def real(name: str, value: Any, low: float = 0.0, *, low_open: bool = False, high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        allowed = f"a float {bound}" + ("" if math.isinf(high) else f" and <= {high:g}")
        raise ValueError(f"Option `{name}` must be {allowed}. Found {name}={value!r}.")
    return float(value)


def count(name: str, value: Any, low: int = 1, *, optional: bool = False) -> int | None:
    """``value`` as an integer ``>= low`` (or None when ``optional``)."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        allowed = f"an integer >= {low}" + (" or null" if optional else "")
        raise ValueError(f"Option `{name}` must be {allowed}. Found {name}={value!r}.")
    return value
