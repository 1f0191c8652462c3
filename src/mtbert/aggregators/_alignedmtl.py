"""Aligned-MTL: independent component alignment (wraps torchjd)."""

from __future__ import annotations

from torchjd.aggregation import AlignedMTLWeighting

from ._torchjd import TorchJDGramianWeighted

SCALE_MODES: tuple[str, ...] = ("median", "min", "rmse")


class AlignedMTL(TorchJDGramianWeighted):
    """Aligned-MTL, Senushkin et al., "Independent Component Alignment for Multi-Task Learning",
    CVPR 2023 (Algorithm 1). Wraps ``torchjd.aggregation.AlignedMTLWeighting``.

    With ``J = U Σ Vᵀ`` (rank ``r``), the task gradients are replaced by the aligned ones
    ``Ĵ = B J = σ U Vᵀ`` with ``B = σ G^{-1/2}`` (on the row space), which are orthogonal with equal
    norms ``σ`` (condition number 1), and the output is ``(1/T) Σ_i ĝ_i`` (torchjd's default
    preference vector is uniform, so the scale is that of a mean, not a sum). ``σ`` is the smallest
    non-zero singular value for ``scale_mode="min"`` (the paper's choice and the default), the
    median one for ``"median"`` (the lower middle one when the rank is even, as ``torch.median``
    takes it: for two tasks ``median`` equals ``min``), the square root of the mean eigenvalue of ``G`` for ``"rmse"``
    (the original implementation).

    :param scale_mode: One of ``"min"``, ``"median"``, ``"rmse"`` (default ``"min"``).
    """

    def __init__(self, scale_mode: str = "min") -> None:
        if scale_mode not in SCALE_MODES:
            raise ValueError(
                f"Option `scale_mode` must be one of {list(SCALE_MODES)}. Found scale_mode={scale_mode!r}."
            )
        super().__init__(AlignedMTLWeighting(scale_mode=scale_mode))  # type: ignore[arg-type]

    def extra_repr(self) -> str:
        return f"scale_mode={self.weighting.scale_mode!r}"
