"""One property suite for every gradient method, on the generated family of hard Jacobians (``_family.py``).

As torchjd's ``tests/unit/aggregation/_asserts.py`` does for its aggregators, extended: finite on zero, duplicate and
dependent rows; non-conflicting wherever the paper promises it (cosine ≥ -1e-6 with every non-zero row); permutation
equivariance; homogeneity of the degree the method has (``agg(c J) = c^k agg(J)``, c from 1e-6 to 1e4); float32
rows giving the float64 answer within 1e-4 (relative). Each method's row in :data:`SPECS` says what it promises and
why; a new method must add its row (checked below).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from _aggregation_asserts import absent_task, conflicting
from _family import SCALES, family
from torch import Tensor

from mtbert.aggregators import AGGREGATOR_NAMES, Aggregator, make_aggregator


@dataclass(frozen=True)
class Spec:
    """What a method promises. ``degree``: ``agg(c J) = c^degree agg(J)``; ``non_conflicting``: ``g_i · d ≥ 0`` for
    every row, on which members (None: none); ``equivariant``: on which members permuting the rows permutes nothing
    in the output; ``options``: constructor options for ``T`` tasks."""

    degree: float = 1.0
    task_scale_invariant: bool = False
    non_conflicting: Callable[[str], bool] | None = None
    equivariant: Callable[[str], bool] = lambda name: True
    options: Callable[[int], dict] = field(default=lambda n_tasks: {})


def everywhere(name: str) -> bool:
    return True


def independent_rows(name: str) -> bool:
    # Equal angles with every row need independent rows: with dependent or duplicate rows ConFIG's least-squares
    # direction (and IMTL-G's) is not promised to be conflict-free.
    return not name.startswith(("dependent", "duplicate", "absent"))


def solvable(name: str) -> bool:
    # G w = w^(-1/alpha) has no solution when 0 is inside the rows' hull (a positive w with J^T w = 0): in the family,
    # the two opposite rows of dependent-T2. Nash-MTL and FairGrad assume it does not happen.
    return name != "dependent-T2"


def two_tasks(name: str) -> bool:
    return name.endswith("-T2")  # one order only: the random projection orders are the same under any permutation


def unique_optimum(name: str) -> bool:
    # With a zero row the worst task's gain is 0 wherever d is: every point of CAGrad's ball is optimal.
    return not name.startswith(("zero_row", "absent"))


SPECS: dict[str, Spec] = {
    "sum": Spec(),
    "weighted": Spec(equivariant=lambda name: False, options=lambda n: {"weights": [1.0 + i for i in range(n)]}),
    "pcgrad": Spec(equivariant=two_tasks),
    "swpcgrad": Spec(equivariant=two_tasks),
    "gradvac": Spec(equivariant=two_tasks),
    "mgda": Spec(non_conflicting=everywhere),  # d·g_i ≥ ||d||² (Désidéri 2012)
    # Equal projections (Liu et al. 2021), but not promised positive: Σ α = 1 flips d against every task when
    # 1ᵀ G⁻¹ (|g_i|) < 0 (8 nearly parallel rows here: -0.576 in 60-digit arithmetic); torchjd asserts none either.
    "imtlg": Spec(task_scale_invariant=True),
    "alignedmtl": Spec(),
    "upgrad": Spec(non_conflicting=everywhere),  # the dual cone (Quinton & Rey 2024)
    "dualproj": Spec(non_conflicting=everywhere),
    "cagrad": Spec(equivariant=unique_optimum),  # the worst task's gain is maximised, not promised to be positive
    "nashmtl": Spec(degree=0.0, non_conflicting=solvable),  # g_i·d = 1/α_i > 0; rescaled to max_norm 1
    "fairgrad": Spec(degree=0.0, non_conflicting=solvable),  # alpha 1: degree (1 - α)/(1 + α) = 0; gains w^(-1)
    "config": Spec(task_scale_invariant=True, non_conflicting=independent_rows),  # equal angles (Liu et al. 2025)
    "uncertainty": Spec(),  # weights from the losses alone
    "famo": Spec(),
}
MEMBERS = family()


def run(name: str, J: Tensor, perm: Tensor | None = None) -> Tensor:
    """A fresh aggregator's output on ``J`` (counts and losses fixed per task, so every method can be called);
    ``perm``: the rows are ``J[perm]``, and so are the counts and losses."""
    n_tasks = J.shape[0]
    perm = torch.arange(n_tasks) if perm is None else perm
    agg: Aggregator = make_aggregator(name, **SPECS[name].options(n_tasks))
    counts = torch.arange(1, n_tasks + 1, dtype=torch.float64)[perm]
    losses = torch.linspace(0.5, 2.0, n_tasks, dtype=torch.float64)[perm]
    return agg(J[perm], counts, losses)


def assert_close_directions(
    actual: Tensor, expected: Tensor, rtol: float, size: float, where: str, atol: float = 1e-9
) -> None:
    """``|actual - expected| ≤ rtol |expected| + atol × size`` (``size``: the output's natural scale, for outputs
    that are zero up to rounding)."""
    error = (actual.double() - expected).norm().item()
    bound = rtol * expected.norm().item() + atol * size
    assert error <= bound, f"{where}: error {error:.3g}, |d| {expected.norm():.3g}, bound {bound:.3g}"


def test_every_method_has_a_spec() -> None:
    assert set(SPECS) == set(AGGREGATOR_NAMES)


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_finite_on_every_member_at_every_scale(name: str) -> None:
    for member, J in MEMBERS:
        for scale in SCALES:
            assert torch.isfinite(run(name, J * scale)).all(), f"{member} at scale {scale}"


@pytest.mark.parametrize("name", [n for n, spec in SPECS.items() if spec.non_conflicting])
def test_non_conflicting_where_the_paper_promises_it(name: str) -> None:
    promised = SPECS[name].non_conflicting
    assert promised is not None
    for member, J in MEMBERS:
        if not promised(member):
            continue
        for scale in SCALES:
            d = run(name, J * scale)
            present = J.norm(dim=1) > 0
            if (
                d.norm() <= 1e-12 * J.norm() * scale
            ):  # 0 (up to rounding: e.g. 0 in the hull for MGDA) conflicts with none
                continue
            cosines = (J[present] * scale) @ d / ((J[present] * scale).norm(dim=1) * d.norm())
            assert cosines.min() >= -1e-6, f"{member} at scale {scale}: cosines {cosines.tolist()}"


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_permutation_equivariant(name: str) -> None:
    spec = SPECS[name]
    for member, J in MEMBERS:
        if not spec.equivariant(member):
            continue
        perm = torch.arange(J.shape[0] - 1, -1, -1)  # reversed rows
        assert_close_directions(run(name, J, perm), run(name, J), 1e-7, J.norm().item(), member)


@pytest.mark.parametrize("name", [n for n, spec in SPECS.items() if spec.task_scale_invariant])
def test_direction_invariant_to_each_tasks_scale(name: str) -> None:
    for member, J in MEMBERS:
        factors = torch.logspace(-2, 2, J.shape[0], dtype=torch.float64)[:, None]
        expected, actual = run(name, J), run(name, J * factors)
        if expected.norm() <= 1e-12 * J.norm():
            assert actual.norm() <= 1e-10 * (J * factors).norm(), member
            continue
        cosine = (actual @ expected / (actual.norm() * expected.norm())).item()
        assert abs(cosine) >= 1 - 1e-9, f"{member}: cosine {cosine}"


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_homogeneous_of_its_degree(name: str) -> None:
    degree = SPECS[name].degree
    for member, J in MEMBERS:
        reference = run(name, J)
        for scale in SCALES:
            expected = reference * scale**degree
            size = J.norm().item() * scale**degree
            assert_close_directions(run(name, J * scale), expected, 1e-7, size, f"{member} at scale {scale}")


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_float32_rows_give_the_float64_answer(name: str) -> None:
    """Two checks: the float32 path computes the exact answer for its own (rounded) rows, to 1e-5; and that answer is
    the float64 matrix's within 1e-4 wherever the method's problem is well-conditioned (:data:`ILL_CONDITIONED`):
    the rank is decided at float32 precision, so rounding of dependent rows is not taken for a direction."""
    for member, J in MEMBERS:
        for scale in SCALES:
            J64 = J * scale
            rounded = J64.float()
            actual = run(name, rounded)
            size = J64.norm().item() * scale ** (SPECS[name].degree - 1)
            where = f"{member} at {scale}"
            # atol: the float32 output itself rounds to ~eps32 of |J|
            assert_close_directions(actual, run(name, rounded.double()), 1e-5, size, where, atol=1e-6)
            if (name, member.split("-")[0]) not in ILL_CONDITIONED:
                assert_close_directions(actual, run(name, J64), 1e-4, size, where, atol=1e-6)


# IMTL-G on nearly parallel rows inverts cosines 1 - 1e-6 apart: float32 rounding of the rows moves its exact answer
# by up to 1.4e-4 (the float32 path is within 5e-8 of the exact answer for the rounded rows, checked above).
ILL_CONDITIONED = {("imtlg", "parallel")}


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_reset_gives_what_a_fresh_method_gives(name: str) -> None:
    """``reset()`` clears every piece of state a step leaves (targets, warm starts, loss history, the generator of the
    random orders): a used method, reset, continues exactly as a new one."""
    J = [conflicting(seed) for seed in range(3)]
    counts = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    losses = [torch.tensor([0.5 + k, 1.0, 2.0 - k / 2], dtype=torch.float64) for k in range(3)]
    fresh = make_aggregator(name, **SPECS[name].options(3))
    expected = [fresh(j, counts, loss) for j, loss in zip(J, losses, strict=True)]
    used = make_aggregator(name, **SPECS[name].options(3))
    for j, loss in zip(reversed(J), losses, strict=True):
        used(j * 3.0, counts, loss * 2.0)
    used.reset()
    for step, (j, loss) in enumerate(zip(J, losses, strict=True)):
        torch.testing.assert_close(used(j, counts, loss), expected[step], rtol=0, atol=0, msg=f"step {step}")


# A task absent from a step has a zero row. CAGrad's ball is centred on the mean over all T rows (the absent task
# counts in T), and MGDA's min-norm point is 0 once a zero row is in the hull: every other method ignores the row.
ABSENT_CHANGES = {"cagrad": "the mean over T", "mgda": "0 in the hull"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", [n for n in AGGREGATOR_NAMES if n not in ABSENT_CHANGES])
def test_a_task_absent_from_the_step_changes_no_direction(name: str, dtype: torch.dtype) -> None:
    """Rows g, 3g, h, -h/2 (two dependences) with a zero row inserted anywhere: the direction of the four rows alone.
    Before 2026-12-07 the spectrum of such a Gramian lost a direction (``Spectrum.of``): on 7 of these 12 cases
    IMTL-G and ConFIG turned by up to 103 degrees, UPGrad and DualProj 80, Aligned-MTL 58 (float64 rows)."""
    for seed in range(12):
        rows, full, k = absent_task(seed, dtype)
        others = [i for i in range(5) if i != k]
        counts, losses = torch.tensor([3.0, 1.0, 2.0, 4.0, 5.0]), torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5])
        options = SPECS[name].options(5)
        alone = make_aggregator(name, **{key: [v[i] for i in others] for key, v in options.items()})
        expected = alone(rows, counts[others].double(), losses[others].double())
        actual = make_aggregator(name, **options)(full, counts.double(), losses.double())
        cosine = (actual.double() @ expected.double() / (actual.double().norm() * expected.double().norm())).item()
        assert cosine >= 1 - 1e-9, f"seed {seed}, zero row {k}: cosine {cosine}"
