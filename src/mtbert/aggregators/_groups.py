"""Grouping of the columns of ``J`` (the flattened shared parameters) for per-group methods."""

from __future__ import annotations

import re

GROUPINGS: tuple[str, ...] = ("all", "layer", "tensor")

_LAYER_RE = re.compile(r"(?:^|\.)layer\.(\d+)(?:\.|$)")


def group_key(name: str, grouping: str) -> str:
    """Returns the name of the group that parameter ``name`` belongs to.

    - ``"all"``: a single group, ``"all"``;
    - ``"tensor"``: one group per parameter tensor (the name itself);
    - ``"layer"``: ``"layer.<k>"`` for names containing ``layer.<k>.`` (encoder layers),
      ``"embeddings"`` for names with an ``embeddings`` component, ``"other"`` for the rest
      (e.g. the pooler).
    """
    if grouping == "all":
        return "all"
    if grouping == "tensor":
        return name
    if grouping == "layer":
        match = _LAYER_RE.search(name)
        if match is not None:
            return f"layer.{int(match.group(1))}"
        if "embeddings" in name.split("."):
            return "embeddings"
        return "other"
    raise ValueError(f"Option `group` must be one of {list(GROUPINGS)}. Found group={grouping!r}.")


def build_groups(layout: list[tuple[str, int]], grouping: str) -> tuple[list[str], list[tuple[int, int, int]]]:
    """Splits the columns described by ``layout`` (``(name, numel)`` in column order) into groups.

    :return: ``(group_names, segments)``: the group names in order of first appearance, and the
        contiguous column segments ``(group_index, start, stop)`` covering ``[0, Σ numel)`` in order,
        adjacent columns of the same group being merged into one segment.
    """
    names: list[str] = []
    index: dict[str, int] = {}
    segments: list[tuple[int, int, int]] = []
    start = 0
    for name, numel in layout:
        key = group_key(name, grouping)
        if key not in index:
            index[key] = len(names)
            names.append(key)
        k = index[key]
        stop = start + numel
        if numel > 0:
            if segments and segments[-1][0] == k and segments[-1][2] == start:
                segments[-1] = (k, segments[-1][1], stop)
            else:
                segments.append((k, start, stop))
        start = stop
    return names, segments
