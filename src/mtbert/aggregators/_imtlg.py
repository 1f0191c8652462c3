"""IMTL-G: impartial multi-task learning, gradient part (wraps torchjd)."""

from __future__ import annotations

from torchjd.aggregation import IMTLGWeighting

from ._torchjd import TorchJDGramianWeighted


class IMTLG(TorchJDGramianWeighted):
    """IMTL-G, Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021, in the generalised
    form of Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024 (supports
    linearly dependent rows). Wraps ``torchjd.aggregation.IMTLGWeighting``.

    The output ``d = Σ_i α_i g_i`` has equal projections onto every task's unit gradient,
    ``d · g_i / ||g_i||`` is the same for all ``i``, with ``Σ_i α_i = 1`` (scale of a convex-ish
    combination, like a mean, not a sum). The weights are zero if they cannot be normalised.
    No parameters.
    """

    def __init__(self) -> None:
        super().__init__(IMTLGWeighting())
