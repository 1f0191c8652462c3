"""The Gramian solvers of mtbert.aggregators._linalg, on small cases solved by hand."""

import pytest
import torch
from _aggregation_asserts import absent_task

from mtbert.aggregators._linalg import (
    Spectrum,
    dual_cone_weights,
    equal_angle_weights,
    min_norm_weights,
    rank_rtol,
)

F64 = torch.float64
RTOL = rank_rtol(F64, 3, 3)


def test_equal_angle_weights_of_independent_rows_by_hand() -> None:
    # Orthogonal rows of norms 1, 2, 4: C = I, so b = D⁻¹ 1.
    G = torch.diag(torch.tensor([1.0, 4.0, 16.0], dtype=F64))
    torch.testing.assert_close(equal_angle_weights(G, RTOL), torch.tensor([1.0, 0.5, 0.25], dtype=F64))


def test_equal_angle_weights_of_dependent_rows_by_hand() -> None:
    # Rows (1, 0), (1, 0), (0, 2): C = [[1, 1, 0], [1, 1, 0], [0, 0, 1]] of rank 2, C⁺ 1 = (1/2, 1/2, 1) (the pseudo-
    # inverse of the all-ones 2 x 2 block is itself / 4), and D⁻¹ = diag(1, 1, 1/2).
    J = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=F64)
    b = equal_angle_weights(J @ J.T, RTOL)
    torch.testing.assert_close(b, torch.tensor([0.5, 0.5, 0.5], dtype=F64), atol=1e-14, rtol=0)


@pytest.mark.parametrize("reg", [0.0, 1e-4])
def test_dual_cone_weights_of_a_zero_gramian_are_the_targets(reg: float) -> None:
    """Every vector is in the dual cone of zero rows: nothing to project, with or without the ridge."""
    U = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]], dtype=F64)
    torch.testing.assert_close(dual_cone_weights(torch.zeros(3, 3, dtype=F64), U, RTOL, reg), U, atol=0, rtol=0)


@pytest.mark.parametrize("scale", [1e-6, 0.1, 1.0, 1e6])
def test_dual_cone_weights_with_a_ridge_by_hand_at_every_scale(scale: float) -> None:
    """The ridge is added to G / tr G, so c·G gives the same weights at any c, a trace below 1 included."""
    # Conflicting rows g0 = (1, 0), g1 = (-1, 1): G = [[1, -1], [-1, 2]], trace 3, and each row is against the other.
    # The projection of u = e_i is v = e_i + λ e_j with the j-th entry of (G / 3 + reg I) v zero (λ > 0, active).
    G = scale * torch.tensor([[1.0, -1.0], [-1.0, 2.0]], dtype=F64)
    reg = 1e-4
    V = dual_cone_weights(G, torch.eye(2, dtype=F64), rank_rtol(F64, 2, 2), reg)
    expected = [[1.0, (1 / 3) / (2 / 3 + reg)], [(1 / 3) / (1 / 3 + reg), 1.0]]
    torch.testing.assert_close(V, torch.tensor(expected, dtype=F64), atol=1e-12, rtol=0)


def test_min_norm_weights_of_a_zero_gramian_are_uniform() -> None:
    """Every point of the simplex has norm 0: the uniform weights, float64 like every other result."""
    w = min_norm_weights(torch.zeros(3, 3, dtype=F64), RTOL)
    torch.testing.assert_close(w, torch.full((3,), 1 / 3, dtype=F64), atol=0, rtol=0)


@pytest.mark.parametrize("n", [1, 3])
def test_spectrum_of_a_zero_gramian_is_empty(n: int) -> None:
    spectrum = Spectrum.of(torch.zeros(n, n, dtype=F64), RTOL)
    assert spectrum.values.shape == (0,) and spectrum.vectors.shape == (n, 0) and spectrum.rank == 0
    assert spectrum.trace == 0.0 and type(spectrum.trace) is float


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("seed", range(12))
def test_a_zero_row_beside_dependent_rows_changes_nothing_of_the_others_spectrum(seed: int, dtype) -> None:
    """A task absent from a step (a zero row) while the others' gradients are dependent: the spectrum is the others'
    with exact zeros in that row. Before, the zero row's e_k was decomposed with the cosines, eigh mixed it into the
    other null vectors, and dropping it left them dependent: QR then removed a direction too many (rank 1 for rows
    g, 3g, h, -h/2), or left ~1e-17 in the zero row for the dual-cone NNLS to lean on with a weight of 1e16."""
    rows, full, k = absent_task(seed, dtype)
    J, full = rows.double(), full.double()  # the rows as stored, in float64
    rtol = rank_rtol(dtype, 5, 6)
    expected = Spectrum.of(J @ J.T, rtol)
    spectrum = Spectrum.of(full @ full.T, rtol)
    assert spectrum.rank == expected.rank == 2
    torch.testing.assert_close(spectrum.values, expected.values, atol=1e-14, rtol=0)
    assert (spectrum.vectors[k] == 0).all()
    L, L0 = spectrum.factor(), expected.factor()
    others = [i for i in range(5) if i != k]
    torch.testing.assert_close((L @ L.T)[others][:, others], L0 @ L0.T, atol=1e-14, rtol=0)


@pytest.mark.parametrize(("gap", "rank"), [(1.5, 2), (2.5, 3)])
def test_the_rank_is_decided_at_rtol_times_the_largest_cosine_eigenvalue(gap: float, rank: int) -> None:
    """Cosines [[1, c, 0], [c, 1, 0], [0, 0, 1]] have eigenvalues 1 - c, 1 and 1 + c ≈ 2: with 1 - c = 1.5 rtol the
    smallest is at or below rtol × λ_max (a dependence: rank 2), with 2.5 rtol above it (rank 3). Not rtol alone,
    rtol / λ_max or rtol × the middle eigenvalue."""
    rtol = rank_rtol(torch.float32, 3, 3)
    c = 1.0 - gap * rtol
    G = torch.tensor([[1.0, c, 0.0], [c, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64) * 4.0
    assert Spectrum.of(G, rtol).rank == rank


def test_a_row_1e_7_the_size_of_seven_others_still_counts() -> None:
    """Seven orthogonal unit rows and one of norm 1e-7: eigenvalues 1/7 and 1e-14/7 of ``G / tr G``; the last is kept
    (above ``T eps64 λ_max`` = 2.5e-16), not dropped as rounding at ``T eps64 / λ_max`` (1.2e-14)."""
    G = torch.diag(torch.tensor([1.0] * 7 + [1e-14], dtype=F64))
    spectrum = Spectrum.of(G, rank_rtol(F64, 8, 8))
    assert spectrum.rank == 8
    assert spectrum.values[-1].item() == pytest.approx(1e-14 / (7 + 1e-14), rel=1e-12)
