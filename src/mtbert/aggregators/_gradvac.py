"""Gradient Vaccine (Wang et al., ICLR 2021)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from ._base import Aggregator, Layout, RandomOrderMixin, Stat, check_finite
from ._groups import GROUPINGS, build_groups
from ._linalg import combine
from ._linalg import gramian as float64_gramian
from ._registry import register

# Lower bound on 1 - φ̂² in the correction's denominator: φ̂ = ±1 (only reachable with beta = 1 and
# exactly parallel gradients) would otherwise divide by zero.
_MIN_ONE_MINUS_TARGET_SQ = 1e-12


def gradvac_coefficients(
    gramian: Sequence[Sequence[float]],
    targets: Sequence[Sequence[float]],
    orders: Sequence[Sequence[int]],
    beta: float,
) -> tuple[list[float], list[list[int]], list[list[float]]]:
    """Runs Algorithm 1 of GradVac for one group on its Gramian only.

    Each vaccinated gradient is tracked as a combination of the original ones,
    ``g_i^PC = Σ_k c_k g_k``; then ``g_i^PC · g_j = Σ_k c_k G[k][j]``, ``||g_i^PC||² = c G cᵀ`` and
    the update ``g_i^PC += a g_j`` becomes ``c_j += a``.

    :param gramian: ``[T][T]`` Gramian of the group's columns.
    :param targets: ``[T][T]`` EMA targets ``φ̂_ij`` before this step.
    :param orders: for each ``i``, the order in which the other tasks ``j`` are visited.
    :param beta: EMA rate ``β``.
    :return: ``(weights, corrections, new_targets)``: ``Σ_i g_i^PC = weights @ J_group``, the 0/1
        matrix of corrected pairs, and the updated targets.
    """
    G = gramian
    n = len(G)
    weights = [0.0] * n
    corrections = [[0] * n for _ in range(n)]
    new_targets = [list(row) for row in targets]
    for i in range(n):
        c = [0.0] * n
        c[i] = 1.0
        cG = list(G[i])  # cG[m] = g_i^PC · g_m
        for j in orders[i]:
            norm_i_sq = sum(c[k] * cG[k] for k in range(n))
            norm_j_sq = G[j][j]
            if norm_i_sq <= 0.0 or norm_j_sq <= 0.0:
                continue  # cosine undefined (a zero gradient, e.g. an absent task): no correction, no EMA
            norm_i = math.sqrt(norm_i_sq)
            norm_j = math.sqrt(norm_j_sq)
            phi = min(1.0, max(-1.0, cG[j] / (norm_i * norm_j)))
            target = targets[i][j]
            if phi < target:
                a = _vaccine_step(norm_i, norm_j, phi, target)
                c[j] += a
                for m in range(n):
                    cG[m] += a * G[j][m]
                corrections[i][j] = 1
            # The target moves towards the observed cosine at every step, corrected or not.
            new_targets[i][j] = (1.0 - beta) * target + beta * phi
        for k in range(n):
            weights[k] += c[k]
    return weights, corrections, new_targets


def _vaccine_step(norm_i: float, norm_j: float, phi: float, target: float) -> float:
    """The ``a`` of ``g_i^PC += a g_j`` that brings ``cos(g_i^PC, g_j)`` from ``phi`` up to ``target``."""
    sqrt_one_minus_target_sq = math.sqrt(max(1.0 - target * target, _MIN_ONE_MINUS_TARGET_SQ))
    sqrt_one_minus_phi_sq = math.sqrt(max(1.0 - phi * phi, 0.0))
    return (
        norm_i * (target * sqrt_one_minus_phi_sq - phi * sqrt_one_minus_target_sq) / (norm_j * sqrt_one_minus_target_sq)
    )


@register("gradvac")
class GradVac(RandomOrderMixin, Aggregator):
    """Gradient Vaccine, Algorithm 1 of Wang et al., "Gradient Vaccine: Investigating and Improving
    Multi-task Optimization in Massively Multilingual Models", ICLR 2021
    (https://arxiv.org/abs/2010.05874).

    Per group of columns and per ordered pair ``(i, j)`` an EMA target ``φ̂_ij`` (initially 0) is
    kept. For each task ``i``, ``g_i^PC`` starts as ``g_i``; for each ``j != i`` in a random order,
    with ``φ_ij = cos(g_i^PC, g_j)``: if ``φ_ij < φ̂_ij``,

        ``g_i^PC += ||g_i^PC|| (φ̂_ij √(1-φ_ij²) - φ_ij √(1-φ̂_ij²)) / (||g_j|| √(1-φ̂_ij²)) g_j``

    and, at every step for every pair (corrected or not), ``φ̂_ij ← (1-β) φ̂_ij + β φ_ij``.
    The group's output is ``Σ_i g_i^PC`` (a sum). With zero targets the correction is exactly the
    PCGrad projection. Pairs where either gradient is exactly zero are skipped (no correction, no
    target update). All of it runs on the group Gramians (one pass over ``J`` builds every group
    Gramian; the full ``last_gramian`` is their sum), the output is one ``w_k @ J[:, segment]`` per
    column segment.

    State: the targets, in the buffer ``targets`` of shape ``[K, T, T]`` (float64, ``K`` groups),
    allocated by :meth:`bind` (for ``group="all"`` also lazily on the first call if ``bind`` was
    never called), and the generator state ``rng_state``; both are saved in ``state_dict``.
    ``reset()`` zeroes the targets and re-seeds the generator.

    ``last_stats`` (:attr:`stats`): ``corrections`` ``[T, T]`` int64, number of groups in which pair
    ``(i, j)`` was corrected this step (0/1 for ``group="all"``); ``group_weights`` ``[K, T]``;
    ``targets_mean`` ``[T, T]``, the updated targets averaged over groups.

    :param beta: EMA rate ``β`` of the targets, in ``(0, 1]`` (default 0.01).
    :param group: ``"all"`` (one group, the whole ``J``), ``"tensor"`` (one group per parameter
        tensor) or ``"layer"`` (one group per encoder layer ``layer.<k>.``, one for the embeddings,
        one for everything else, e.g. the pooler). ``"tensor"``/``"layer"`` need :meth:`bind`.
    :param seed: Seed of the generator drawing the orders (integer in ``[0, 2**63 - 1]``, default 0).
    """

    targets: Tensor | None
    stats: ClassVar[dict[str, Stat]] = {
        "corrections": Stat("pair", "groups of columns in which task i's gradient was corrected towards task j's"),
        "group_weights": Stat("group_task", "the task's weight in the direction (mean over the groups of columns)"),
        "targets_mean": Stat("pair", "the EMA target cosine of the pair after the step (mean over the groups)"),
    }

    def __init__(self, beta: float = 0.01, group: str = "all", seed: int = 0) -> None:
        super().__init__()
        self.beta = _check_beta(beta)
        self.group = _check_group(group)
        self._init_rng(seed)
        self.register_buffer("targets", None)
        self.group_names: list[str] = []
        self._segments: list[tuple[int, int, int]] = []
        self._n_columns: int | None = None
        self._group_gramians: Tensor | None = None

    def bind(self, layout: Layout, n_tasks: int) -> None:
        super().bind(layout, n_tasks)
        self.group_names, self._segments = build_groups(layout, self.group)
        self._n_columns = sum(numel for _, numel in layout)
        self.targets = torch.zeros(len(self.group_names), n_tasks, n_tasks, dtype=torch.float64)

    def reset(self) -> None:
        self._reset_rng()
        if self.targets is not None:
            if self._n_columns is None:  # group "all" allocated lazily: shape follows the next J
                self.targets = None
            else:
                self.targets.zero_()

    def _segments_for(self, J: Tensor) -> list[tuple[int, int, int]]:
        n_tasks, n_columns = J.shape
        if self._n_columns is None:
            if self.group != "all":
                raise RuntimeError(
                    f"GradVac(group={self.group!r}) needs the parameter layout: call "
                    "bind(layout, n_tasks) before the first step."
                )
            if self.targets is None:
                self.targets = torch.zeros(1, n_tasks, n_tasks, dtype=torch.float64)
            self.group_names = ["all"]
            return [(0, 0, n_columns)]
        if n_columns != self._n_columns:
            raise ValueError(
                f"J has {n_columns} columns but the layout given to bind() has {self._n_columns} parameters in total."
            )
        return self._segments

    def _compute_gramian(self, J: Tensor) -> Tensor:
        segments = self._segments_for(J)
        assert self.targets is not None
        _check_targets(self.targets, J.shape[0])
        gramian, self._group_gramians = _group_gramians(J, segments, len(self.group_names))
        return gramian

    def _aggregate(self, J: Tensor, gramian: Tensor, counts: Tensor | None) -> Tensor:
        assert self.targets is not None and self._group_gramians is not None
        segments = self._segments_for(J)
        n_groups, n_tasks = len(self.group_names), J.shape[0]
        cpu = self._group_gramians.detach().to(device="cpu", dtype=torch.float64)  # the one read-back of the step
        check_finite(cpu.sum(dim=0))
        group_gramians = cpu.tolist()
        self._group_gramians = None
        targets = self.targets.detach().to(device="cpu", dtype=torch.float64).tolist()
        orders = self._draw_orders(n_tasks, n_groups)

        weights, corrections, new_targets = _vaccinate_groups(group_gramians, targets, orders, self.beta, n_tasks)
        self.targets.copy_(new_targets)
        self.last_stats.update(corrections=corrections, group_weights=weights, targets_mean=new_targets.mean(dim=0))
        return _combine(J, segments, weights)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # An unbound group="all" instance has no targets yet: take the saved shape.
        key = prefix + "targets"
        if self.targets is None and key in state_dict and state_dict[key] is not None:
            self.targets = torch.zeros_like(state_dict[key], dtype=torch.float64, device="cpu")
            self.group_names = ["all"] * self.targets.shape[0]
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, group={self.group!r}, seed={self.seed}"


def _check_beta(beta: Any) -> float:
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not math.isfinite(beta) or not 0.0 < beta <= 1.0:
        raise ValueError(f"Option `beta` must be a float in (0, 1]. Found beta={beta!r}.")
    return float(beta)


def _check_group(group: str) -> str:
    if group not in GROUPINGS:
        raise ValueError(f"Option `group` must be one of {list(GROUPINGS)}. Found group={group!r}.")
    return group


def _check_targets(targets: Tensor, n_tasks: int) -> None:
    if targets.shape[1:] != (n_tasks, n_tasks):
        raise ValueError(
            f"J has {n_tasks} rows but GradVac's targets are for {targets.shape[1]} tasks "
            "(call bind() with the right n_tasks, or reset())."
        )


def _covers_all(segments: list[tuple[int, int, int]], n_columns: int) -> bool:
    """Whether a single segment spans every column (no slicing of ``J`` needed)."""
    return len(segments) == 1 and segments[0][1:] == (0, n_columns)


def _group_gramians(J: Tensor, segments: list[tuple[int, int, int]], n_groups: int) -> tuple[Tensor, Tensor]:
    """``(J Jᵀ, [K, T, T] per-group Gramians)``, float64, from one pass over ``J``; the first is the sum of the
    others (a group whose tensors are all empty has no segment, and a zero Gramian)."""
    if n_groups == 1 and _covers_all(segments, J.shape[1]):
        gramian = float64_gramian(J)
        return gramian, gramian.unsqueeze(0)
    n_tasks = J.shape[0]
    group_gramians = torch.zeros(n_groups, n_tasks, n_tasks, dtype=torch.float64, device=J.device)
    for k, start, stop in segments:
        group_gramians[k] += float64_gramian(J[:, start:stop])
    return group_gramians.sum(dim=0), group_gramians


def _vaccinate_groups(
    group_gramians: list[list[list[float]]],
    targets: list[list[list[float]]],
    orders: list[list[list[int]]],
    beta: float,
    n_tasks: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Runs :func:`gradvac_coefficients` on every group (one entry of ``orders`` per group).

    :return: CPU tensors ``(weights [K, T] float64, corrections [T, T] int64 summed over groups,
        new_targets [K, T, T] float64)``.
    """
    group_weights: list[list[float]] = []
    corrections = torch.zeros(n_tasks, n_tasks, dtype=torch.int64)
    new_targets: list[list[list[float]]] = []
    for k, group_orders in enumerate(orders):
        w, corr, tgt = gradvac_coefficients(group_gramians[k], targets[k], group_orders, beta)
        group_weights.append(w)
        corrections += torch.tensor(corr, dtype=torch.int64)
        new_targets.append(tgt)
    return (
        torch.tensor(group_weights, dtype=torch.float64),
        corrections,
        torch.tensor(new_targets, dtype=torch.float64),
    )


def _combine(J: Tensor, segments: list[tuple[int, int, int]], weights: Tensor) -> Tensor:
    """The output: ``weights[k] @ J[:, start:stop]`` for each segment ``(k, start, stop)``."""
    if _covers_all(segments, J.shape[1]):
        return combine(weights[segments[0][0]], J)
    out = torch.empty(J.shape[1], dtype=J.dtype, device=J.device)  # the segments cover every column
    for k, start, stop in segments:
        combine(weights[k], J[:, start:stop], out=out[start:stop])
    return out
