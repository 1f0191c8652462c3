"""Scale-free numerics on the ``[T, T]`` Gramian, shared by every method that works on it.

- :func:`gramian`: ``J Jᵀ`` in float64 from rows of any float dtype, block by block (no float64 copy of ``J``). A
  float32 Gramian of 10M-column rows is off by ~3e-4 of its entries, far more than the rows' own rounding.
- :class:`Spectrum`: the eigen-decomposition of a Gramian with its rank decided at the precision of the rows it came
  from (:func:`rank_rtol`), on the rows' cosines, so float32 rounding of exactly dependent rows is not mistaken for a
  direction, and a small row is not mistaken for rounding.
- :func:`min_norm_weights` and :func:`dual_cone_weights`: the exact solutions of MGDA's and the dual-cone methods'
  quadratic programs, both as non-negative least squares (Lawson & Hanson's active-set method, ``scipy.optimize.nnls``,
  finite and exact up to float64 rounding) on a factor of the trace-normalised Gramian.

Every tolerance here is relative to the Gramian's own scale: the results are the same for ``c·J`` at any ``c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import nnls
from torch import Tensor

_CPU_BLOCK = 1 << 16  # columns per float64 block on the CPU (T x 65536 doubles stay in cache)
_DEVICE_BLOCK = 1 << 22  # on accelerators: few kernel launches
_EPS64 = torch.finfo(torch.float64).eps


def gramian(J: Tensor) -> Tensor:
    """``J Jᵀ`` as a float64 ``[T, T]`` tensor on ``J``'s device, summed over blocks of columns of ``J``."""
    if J.dtype == torch.float64:
        return J @ J.T
    block = _CPU_BLOCK if J.device.type == "cpu" else _DEVICE_BLOCK
    out = torch.zeros(J.shape[0], J.shape[0], dtype=torch.float64, device=J.device)
    for part in J.split(block, dim=1):
        part = part.double()
        out.addmm_(part, part.T)
    return out


def combine(weights: Tensor, J: Tensor, out: Tensor | None = None) -> Tensor:
    """``weights @ J`` (``weights`` ``[T]``) in ``J``'s dtype, summed in float64 block by block: a direction that is a
    small difference of large rows (nearly parallel gradients, weights of both signs) keeps ``eps(J.dtype)`` of its
    own size, not of the rows'. ``out``: a ``[P]`` tensor to write into (e.g. a slice of a larger one)."""
    w = weights.to(device=J.device, dtype=torch.float64)
    if J.dtype == torch.float64:
        return torch.mv(J.T, w, out=out) if out is not None else w @ J
    out = torch.empty(J.shape[1], dtype=J.dtype, device=J.device) if out is None else out
    block = _CPU_BLOCK if J.device.type == "cpu" else _DEVICE_BLOCK
    for start in range(0, J.shape[1], block):
        out[start : start + block] = w @ J[:, start : start + block].double()
    return out


def rank_rtol(dtype: torch.dtype, n_rows: int, width: int) -> float:
    """Relative eigenvalue tolerance of the cosine matrix of ``n_rows`` rows of ``width`` columns stored in ``dtype``.

    An eigenvalue at or below ``rtol × λ_max`` is rounding, not signal, for either of two reasons: the unit rows hold
    their values to ``eps(dtype)`` relative, so exactly dependent rows are off by up to ``eps/2 · √T`` in singular
    value (4 × that is the bound used); and a float64 sum of ``width`` products is good to about ``√width · eps64``
    (``T`` × that). Never below ``T · eps64``, what ``eigh`` itself resolves. For float32 rows and ``T = 3``: 6.8e-13,
    i.e. singular values below 8e-7 of the largest."""
    rows = (4.0 * math.sqrt(n_rows) * torch.finfo(dtype).eps) ** 2
    sums = n_rows * math.sqrt(max(width, 1)) * _EPS64
    return max(rows, sums, n_rows * _EPS64)


@dataclass(frozen=True)
class Spectrum:
    """The eigenpairs of the trace-normalised Gramian ``G / tr(G)`` on the rows' numerical row space.

    The rank is decided on the cosine matrix ``C = D⁻¹ G D⁻¹`` (``D`` the row norms), where each row's rounding is
    relative to its own norm, so a row 1e-6 the size of another still counts: an eigenvector ``z`` of ``C`` with an
    eigenvalue at or below ``rtol × λ_max(C)`` is a dependence among the rows, ``G D⁻¹ z ≈ 0``. Zero rows (tasks
    absent from the step) are left out of all this and get exact zeros in ``vectors``. ``G`` is projected off the
    null directions, then decomposed; ``values`` ``[r]`` (descending, all > 0), ``vectors`` ``[T, r]``; ``trace`` is
    ``tr(G)`` (0 for a zero Gramian, which has ``r = 0``)."""

    values: Tensor
    vectors: Tensor
    trace: float

    @classmethod
    def of(cls, G: Tensor, rtol: float) -> Spectrum:
        """``G``: a float64 CPU Gramian; ``rtol``: :func:`rank_rtol` of the rows it came from."""
        trace = float(G.diagonal().sum())
        n = G.shape[0]
        if not trace > 0:
            return cls(G.new_zeros(0), G.new_zeros(n, 0), 0.0)
        # Zero rows are left out: with one inside C, eigh may mix its e_k into the other null vectors, which are then
        # dependent once D⁻¹ drops e_k (QR removed a direction too many), and rounding left ~1e-17 where an exact 0
        # belongs, for the dual cone's NNLS to lean on with a weight of 1e16 (tests/aggregators/test_linalg.py).
        present = (G.diagonal() > 0).nonzero().squeeze(1)
        sub = G[present][:, present]
        inv = 1 / sub.diagonal().sqrt()
        values, vectors = torch.linalg.eigh(sub * inv[:, None] * inv[None, :])
        null = vectors[:, values <= rtol * values[-1]] * inv[:, None]  # G's null directions D⁻¹ z
        normalised = sub / trace
        if null.shape[1]:
            basis = torch.linalg.qr(null).Q
            projector = torch.eye(len(present), dtype=G.dtype) - basis @ basis.T
            normalised = projector @ normalised @ projector
        values, vectors = torch.linalg.eigh(normalised)
        keep = values > n * _EPS64 * values[-1]
        full = G.new_zeros(n, int(keep.sum()))
        full[present] = vectors[:, keep].flip(1)
        return cls(values[keep].flip(0), full, trace)

    @property
    def rank(self) -> int:
        return len(self.values)

    def apply(self, power: float, b: Tensor) -> Tensor:
        """``(G / tr G)^power b`` on the row space (``power`` < 0: the pseudo-inverse's powers). Components of ``b``
        along an eigenvector that are rounding (below ``16 T eps64 · |b|``) count as 0, so a right-hand side that lies
        outside the row space gives 0, not amplified noise."""
        coefficients = self.vectors.T @ b
        floor = 16 * len(b) * _EPS64 * float(b.norm())
        coefficients = torch.where(coefficients.abs() > floor, coefficients, torch.zeros_like(coefficients))
        return self.vectors @ (self.values**power * coefficients)

    def factor(self) -> Tensor:
        """``L`` ``[T, r]`` with ``L Lᵀ = G / tr G`` (on the kept eigenpairs)."""
        return self.vectors * self.values.sqrt()


def equal_angle_weights(G: Tensor, rtol: float) -> Tensor:
    """``b = D⁻¹ C⁺ 1`` (``C`` the cosines, ``D`` the norms; 0 for zero rows): ``Jᵀ b`` has the same inner product
    with every unit gradient, ``C (D b) = 1``, least squares on the unit rows where no exact solution exists (for
    dependent rows). Scaling one task's gradient scales its weight inversely and leaves ``Jᵀ b`` as it is. The
    direction of IMTL-G and of ConFIG, which differ in its length."""
    norms = G.diagonal().clamp(min=0).sqrt()
    present = norms > 0
    inv = torch.where(present, 1 / norms.clamp(min=1e-300), torch.zeros_like(norms))
    cosines = G * inv[:, None] * inv[None, :]
    spectrum = Spectrum.of(cosines, rtol)
    ones = present.to(G.dtype)
    if spectrum.rank == int(present.sum()):  # independent rows: C⁻¹ 1 on them, the well-conditioned solve
        b = torch.zeros_like(norms)
        b[present] = torch.linalg.solve(cosines[present][:, present], ones[present])
        return inv * b
    return inv * spectrum.apply(-1.0, ones) / spectrum.trace


def min_norm_weights(G: Tensor, rtol: float) -> Tensor:
    """The weights ``w`` on the simplex minimising ``wᵀ G w`` (the min-norm point of the rows' convex hull), exactly.

    With ``L Lᵀ = G / tr G``, the non-negative least squares ``min_{x ≥ 0} |Lᵀ x|² + (1ᵀx - 1)²`` has the solution
    ``x = s w`` with ``s = 1 / (1 + wᵀ (G / tr G) w) ∈ [1/2, 1]``: for any fixed ``s`` the first term alone decides the
    direction of ``x``. Its KKT conditions are MGDA's: ``(G w)_i ≥ wᵀ G w`` with equality where ``w_i > 0``."""
    n = G.shape[0]
    spectrum = Spectrum.of(G, rtol)
    if spectrum.rank == 0:
        return torch.full((n,), 1.0 / n, dtype=torch.float64)
    A = np.vstack([spectrum.factor().T.numpy(), np.ones((1, n))])
    b = np.zeros(spectrum.rank + 1)
    b[-1] = 1.0
    x = _nnls(A, b)
    return torch.from_numpy(x / x.sum())


def dual_cone_weights(G: Tensor, U: Tensor, rtol: float, reg: float = 0.0) -> Tensor:
    """For each row ``u`` of ``U`` ``[K, T]``, the ``v ≥ u`` minimising ``vᵀ G v``: ``Jᵀ v`` is the projection of
    ``Jᵀ u`` onto the dual cone ``{x : J x ≥ 0}`` (Proposition 1 of Quinton & Rey 2024), exactly.

    With ``v = u + λ`` and ``L Lᵀ = G / tr G``, ``λ`` solves ``min_{λ ≥ 0} |Lᵀ λ + Lᵀ u|²``, a non-negative least
    squares; its KKT conditions give ``G v ≥ 0`` (no task's gradient against ``Jᵀ v``) with equality where ``λ > 0``.
    ``reg`` > 0 adds ``reg · I`` to ``G / tr G`` first, as torchjd's ``QuadprogProjector(norm_eps=0, reg_eps=reg)``."""
    n = G.shape[0]
    if reg > 0:
        trace = float(G.diagonal().sum())
        normalised = G / trace if trace > 0 else torch.zeros_like(G)
        L = torch.linalg.cholesky(normalised + reg * torch.eye(n, dtype=G.dtype))
    else:
        L = Spectrum.of(G, rtol).factor()
    if L.shape[1] == 0:  # a zero Gramian: every vector is in the dual cone
        return U.clone()
    A = L.T.numpy()
    return torch.stack([u + torch.from_numpy(_nnls(A, -(A @ u.numpy()))) for u in U])


def _nnls(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    # Lawson-Hanson's active-set loop ends in at most a few passes per variable; 50 n is far above what it takes.
    return nnls(A, b, maxiter=50 * A.shape[1])[0]
