"""Aligned-MTL: independent component alignment."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import GramianWeightedAggregator
from ._linalg import Spectrum
from ._registry import register

SCALE_MODES: tuple[str, ...] = ("median", "min", "rmse")


@register("alignedmtl")
class AlignedMTL(GramianWeightedAggregator):
    """Aligned-MTL, Senushkin et al., "Independent Component Alignment for Multi-Task Learning",
    CVPR 2023 (Algorithm 1), as the authors' ``ProcrustesSolver`` (SamsungLabs/MTL) computes it.

    With ``J = U Σ Vᵀ`` (rank ``r``), the task gradients are replaced by the aligned ones
    ``Ĵ = B J = σ U Vᵀ`` with ``B = σ G^{-1/2}`` (on the row space), which are orthogonal with equal
    norms ``σ`` (condition number 1), and the output is their sum ``Σ_i ĝ_i`` (the authors' balancer sums them;
    torchjd's ``AlignedMTL`` takes their mean, ``1/T`` of this). ``σ`` is the smallest non-zero singular value for
    ``scale_mode="min"`` (the paper's choice, the authors' default and ours), the median one for ``"median"`` (the
    lower middle one when the rank is even, as ``torch.median`` takes it: for two tasks ``median`` equals
    ``min``), the square root of the mean eigenvalue of ``G`` (the singular values' root mean square) for
    ``"rmse"``.

    The rank is decided at the precision of ``J``'s dtype (:class:`~mtbert.aggregators._linalg.Spectrum`); the
    authors' ``λ > λ_max · T · eps(float32)`` keeps or drops directions of a float64 Gramian whose singular values
    are below ``√(T eps32) ≈ 6e-4`` of the largest, so on such nearly dependent rows the two differ.

    :param scale_mode: One of ``"min"``, ``"median"``, ``"rmse"`` (default ``"min"``).
    """

    def __init__(self, scale_mode: str = "min") -> None:
        super().__init__()
        if scale_mode not in SCALE_MODES:
            raise ValueError(
                f"Option `scale_mode` must be one of {list(SCALE_MODES)}. Found scale_mode={scale_mode!r}."
            )
        self.scale_mode = scale_mode

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        n_tasks = len(gramian)
        spectrum = Spectrum.of(gramian, rtol)
        if spectrum.rank == 0:  # every row is zero: any weights give 0
            return torch.ones(n_tasks, dtype=torch.float64)
        values = spectrum.values
        scale = {"min": values[-1], "median": values.median(), "rmse": values.mean()}[self.scale_mode]
        return scale.sqrt() * spectrum.apply(-0.5, torch.ones(n_tasks, dtype=torch.float64))

    def extra_repr(self) -> str:
        return f"scale_mode={self.scale_mode!r}"
