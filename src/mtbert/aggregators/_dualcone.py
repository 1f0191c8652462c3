"""UPGrad and DualProj: projections onto the dual cone of the task gradients, solved exactly."""

from __future__ import annotations

import torch
from torch import Tensor

from . import _options
from ._base import GramianWeightedAggregator
from ._linalg import dual_cone_weights
from ._registry import register


class _DualCone(GramianWeightedAggregator):
    """Projections onto the dual cone ``{x : J x ≥ 0}`` of vectors ``Jᵀ u`` for the rows ``u`` of :meth:`targets`,
    solved exactly on the Gramian (:func:`~mtbert.aggregators._linalg.dual_cone_weights`); the weights are the sum
    of the projections' weights."""

    def __init__(self, reg_eps: float = 0.0) -> None:
        super().__init__()
        self.reg_eps = _options.real("reg_eps", reg_eps)

    def targets(self, n_tasks: int) -> Tensor:
        raise NotImplementedError

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        return dual_cone_weights(gramian, self.targets(len(gramian)), rtol, self.reg_eps).sum(dim=0)

    def extra_repr(self) -> str:
        return f"reg_eps={self.reg_eps}"


@register("upgrad")
class UPGrad(_DualCone):
    """UPGrad, Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (arXiv:2406.16232),
    Algorithm 1: each task gradient is projected onto the dual cone of all of them (the set of vectors with a
    non-negative inner product with every row) and the projections are averaged.

    The output has a non-negative inner product with every task gradient (no task's loss goes up to first
    order) and equals the mean when no two gradients conflict. Scale: a mean (as torchjd's, the authors' code).

    Each projection is the quadratic program ``min_{v ≥ u} vᵀ G v`` (their Proposition 1), solved exactly as a
    non-negative least squares on a factor of ``G / tr G``: the same at every scale of ``J``. torchjd solves it with
    quadprog on ``G / (tr G + norm_eps) + reg_eps I`` (1e-4 each by default), which becomes the plain mean when
    ``tr G`` is below ``norm_eps`` and conflicts slightly otherwise; ``reg_eps`` here adds that ridge for comparison.

    :param reg_eps: Added to the diagonal of ``G / tr G`` (>= 0; default 0: the exact projection).
    """

    def targets(self, n_tasks: int) -> Tensor:
        return torch.eye(n_tasks, dtype=torch.float64) / n_tasks


@register("dualproj")
class DualProj(_DualCone):
    """DualProj, the projection of the mean gradient onto the dual cone of the task gradients, i.e. Eq. 11 of
    Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017, as an aggregator in
    Quinton & Rey 2024.

    The output has a non-negative inner product with every task gradient and is the closest such vector to the
    mean. Scale: a mean. Solved exactly as :class:`UPGrad`'s projections are.

    :param reg_eps: Added to the diagonal of ``G / tr G`` (>= 0; default 0: the exact projection).
    """

    def targets(self, n_tasks: int) -> Tensor:
        return torch.full((1, n_tasks), 1.0 / n_tasks, dtype=torch.float64)
