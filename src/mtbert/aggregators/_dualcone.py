"""UPGrad and DualProj: projections onto the dual cone of the task gradients (wrap torchjd, solved by quadprog)."""

from __future__ import annotations

from torchjd.aggregation import DualProjWeighting, UPGradWeighting
from torchjd.linalg import QuadprogProjector

from . import _options
from ._torchjd import TorchJDGramianWeighted


class _DualCone(TorchJDGramianWeighted):
    """A torchjd weighting that projects onto the dual cone with quadprog; the options of both methods."""

    weighting_class: type = UPGradWeighting

    def __init__(self, norm_eps: float = 1e-4, reg_eps: float = 1e-4) -> None:
        norm_eps, reg_eps = _options.real("norm_eps", norm_eps), _options.real("reg_eps", reg_eps)
        super().__init__(self.weighting_class(projector=QuadprogProjector(norm_eps=norm_eps, reg_eps=reg_eps)))
        self.norm_eps, self.reg_eps = float(norm_eps), float(reg_eps)

    def extra_repr(self) -> str:
        return f"norm_eps={self.norm_eps}, reg_eps={self.reg_eps}"


class UPGrad(_DualCone):
    """UPGrad, Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (arXiv:2406.16232),
    Algorithm 1: each task gradient is projected onto the dual cone of all of them (the set of vectors with a
    non-negative inner product with every row) and the projections are averaged. Wraps
    ``torchjd.aggregation.UPGradWeighting`` with quadprog's QP solver.

    The output has a non-negative inner product with every task gradient (no task's loss goes up to first
    order) and equals the mean when no two gradients conflict. Scale: a mean.

    :param norm_eps: Added to the Gramian's norm before normalising it (>= 0, default 1e-4, torchjd's).
    :param reg_eps: Added to the Gramian's diagonal so the QP is strictly convex (>= 0, default 1e-4, torchjd's).
    """

    weighting_class = UPGradWeighting


class DualProj(_DualCone):
    """DualProj, the projection of the mean gradient onto the dual cone of the task gradients, i.e. Eq. 11 of
    Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017, as an aggregator in
    Quinton & Rey 2024. Wraps ``torchjd.aggregation.DualProjWeighting`` with quadprog's QP solver.

    The output has a non-negative inner product with every task gradient and is the closest such vector to the
    mean. Scale: a mean.

    :param norm_eps: Added to the Gramian's norm before normalising it (>= 0, default 1e-4, torchjd's).
    :param reg_eps: Added to the Gramian's diagonal so the QP is strictly convex (>= 0, default 1e-4, torchjd's).
    """

    weighting_class = DualProjWeighting
