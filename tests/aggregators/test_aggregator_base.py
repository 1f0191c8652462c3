"""Behaviour shared by every aggregator: shapes, the Gramian, the weights applied, input checks."""

import math
import re

import pytest
import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mtbert.aggregators import AGGREGATOR_NAMES, Aggregator, make_aggregator

OPTIONS = {"weighted": {"weights": [1.0, 0.5, 2.0]}}
COUNTS = torch.tensor([3.0, 1.0, 2.0])
LOSSES = torch.tensor([1.0, 2.0, 4.0])  # read by the loss-weighting methods (uncertainty, famo) only

SQRT2, SQRT5 = math.sqrt(2.0), math.sqrt(5.0)
# Nash-MTL and FairGrad (alpha = 1) on the "conflict" Gramian: G w = 1/w, i.e. 10a - 4b = 1/a, -4a + 2b = 1/b. The
# second gives b = a + sqrt(a² + 1/2); into the first, 6a² - 1 = 4a sqrt(a² + 1/2), so 20a⁴ - 20a² + 1 = 0 and
# a² = (5 + 2√5)/10 (the root with 6a² >= 1).
BARGAIN_A = math.sqrt((5.0 + 2.0 * SQRT5) / 10.0)
BARGAIN = [BARGAIN_A, BARGAIN_A + math.sqrt(BARGAIN_A**2 + 0.5)]

# Each case: (J, its Gramian by hand, counts, options, weights derived by hand for every aggregator).
HAND_CASES = {
    # Two conflicting rows g0, g1: G = [[10, -4], [-4, 2]] = S² with S = [[3, -1], [-1, 1]], so G^{-1/2} = S⁻¹ =
    # ½[[1, 1], [1, 3]] and the singular values of J are the eigenvalues 2 ± √2 of S.
    "conflict": (
        [[2.0, 1.0, 2.0, 1.0], [-1.0, 0.0, -1.0, 0.0]],
        [[10.0, -4.0], [-4.0, 2.0]],
        [2.0, 1.0],
        {"weighted": {"weights": [2.0, 0.5]}, "cagrad": {"c": 0.0}, "nashmtl": {"max_norm": 0.0}},
        {
            "sum": [1.0, 1.0],
            "weighted": [2.0, 0.5],
            # g0·g1 = -4 < 0: g0^PC = g0 + (4/2) g1, g1^PC = g1 + (4/10) g0.
            "pcgrad": [1.4, 3.0],
            # Rows h0 = g0/2, h1 = g1 (h0·h1 = -2, ||h0||² = 2.5, ||h1||² = 2): h0 + h1 and h1 + 0.8 h0, i.e.
            # 1.8 h0 + 2 h1 = 0.9 g0 + 2 g1.
            "swpcgrad": [0.9, 2.0],
            # First step, zero targets: the vaccine step is PCGrad's projection.
            "gradvac": [1.4, 3.0],
            # w0 = ((g1 - g0)·g1) / ||g0 - g1||² = (2 + 4) / 20.
            "mgda": [0.3, 0.7],
            # d = w0 g0 + w1 g1 with equal projections on the unit rows: w ∝ (||g1||, ||g0||) = (√2, √10).
            "imtlg": [1.0 / (1.0 + SQRT5), SQRT5 / (1.0 + SQRT5)],
            # σ_min G^{-1/2} 1 with σ_min = 2 - √2: (2 - √2) · (1, 2) (the sum of the aligned rows, as the authors).
            "alignedmtl": [2.0 - SQRT2, 4.0 - 2.0 * SQRT2],
            # Each row projected onto the dual cone (as PCGrad's projections here: each stays on the other's side),
            # then averaged: ½(1.4, 3).
            "upgrad": [0.7, 1.5],
            # The mean ½(g0 + g1) has m·g1 = -1 < 0: m + (1/||g1||²) g1 = ½ g0 + g1 (and then m·g0 = 1 >= 0).
            "dualproj": [0.5, 1.0],
            "cagrad": [1.0, 1.0],  # c = 0: the mean, times T (the authors' "to match the sum loss")
            "nashmtl": BARGAIN,  # max_norm 0: α itself
            "fairgrad": [2 * b for b in BARGAIN],  # alpha = 1: the same condition G w = 1/w; times T as the authors
            # Cosines C = [[1, -2/√5], [-2/√5, 1]] give pinv(C) 1 ∝ (1, 1), so b ∝ (1/√10, 1/√2); scaled by
            # 1ᵀGb / bᵀGb: ((5 + √5)/10, (1 + √5)/2).
            "config": [(5.0 + SQRT5) / 10.0, (1.0 + SQRT5) / 2.0],
            "uncertainty": [1.0, 1.0],  # first step: s = 0
            "famo": [2.0 / 3.0, 1.0 / 3.0],  # first step: uniform z, so w ∝ 1/L with L = (1, 2)
        },
    ),
    # Three orthogonal rows of norms 1, 2, 4: G = diag(1, 4, 16).
    "orthogonal": (
        [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]],
        [[1.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 16.0]],
        [3.0, 1.0, 2.0],
        {**OPTIONS, "cagrad": {"c": 0.0}, "nashmtl": {"max_norm": 0.0}},
        {
            "sum": [1.0, 1.0, 1.0],
            "weighted": [1.0, 0.5, 2.0],
            "pcgrad": [1.0, 1.0, 1.0],  # no negative inner product: nothing projected
            "swpcgrad": [1.0 / 3.0, 1.0, 0.5],  # 1 / counts
            "gradvac": [1.0, 1.0, 1.0],  # every cosine is 0, not below the zero targets
            "mgda": [16.0 / 21.0, 4.0 / 21.0, 1.0 / 21.0],  # ∝ 1/||g_i||²
            "imtlg": [4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0],  # ∝ 1/||g_i||
            "alignedmtl": [1.0, 0.5, 0.25],  # σ_min · 1/||g_i||, σ_min = 1
            "upgrad": [1.0 / 3.0] * 3,  # no conflict: every row is in the dual cone already, the mean
            "dualproj": [1.0 / 3.0] * 3,  # the mean is in the dual cone
            "cagrad": [1.0] * 3,  # c = 0: the sum
            "nashmtl": [1.0, 0.5, 0.25],  # G w = 1/w with G = diag(1, 4, 16)
            "fairgrad": [3.0, 1.5, 0.75],  # the same, times T
            "config": [7.0 / 3.0, 7.0 / 6.0, 7.0 / 12.0],  # b = (1, 1/2, 1/4), 1ᵀGb = 7, bᵀGb = 3
            "uncertainty": [1.0, 1.0, 1.0],
            "famo": [4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0],  # ∝ 1/L, L = (1, 2, 4)
        },
    ),
}
# Exact in float64 but for Nash-MTL and FairGrad, whose 1e-10 ridge on the normalised Gramian moves the weights by
# ~1e-9 here, and FAMO, which adds 1e-8 to the losses.
HAND_TOL = {"fairgrad": 1e-8, "nashmtl": 1e-8, "famo": 1e-7}


def _make(name: str) -> Aggregator:
    return make_aggregator(name, **OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_output_shape_dtype_and_last_gramian(name: str) -> None:
    J = torch.randn(3, 7, generator=torch.Generator().manual_seed(3))
    agg = _make(name)
    out = agg(J, COUNTS, LOSSES)
    assert out.shape == (7,)
    assert out.dtype == J.dtype
    assert agg.last_gramian is not None
    assert agg.last_gramian.dtype == torch.float64  # from the float32 rows, whatever J's dtype
    torch.testing.assert_close(agg.last_gramian, J.double() @ J.double().T)
    assert all(isinstance(v, torch.Tensor) for v in agg.last_stats.values())


@pytest.mark.parametrize("case", sorted(HAND_CASES))
@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_output_is_hand_computed_weights_times_J(name: str, case: str) -> None:
    rows, gramian, counts, options, table = HAND_CASES[case]
    J = torch.tensor(rows, dtype=torch.float64)
    expected = torch.tensor(table[name], dtype=torch.float64)  # a new aggregator needs its hand weights here
    tol = HAND_TOL.get(name, 1e-12)
    agg = make_aggregator(name, **options.get(name, {}))
    out = agg(J, torch.tensor(counts), LOSSES[: len(rows)])

    torch.testing.assert_close(out, expected @ J, atol=tol, rtol=0)
    torch.testing.assert_close(agg.last_gramian, torch.tensor(gramian, dtype=torch.float64), atol=0, rtol=0)
    weights = agg.last_stats.get("weights")
    if weights is None:  # gradvac: one weight vector per group, a single group here
        assert agg.last_stats["group_weights"].shape == (1, len(rows))
        weights = agg.last_stats["group_weights"][0]
    torch.testing.assert_close(weights, expected, atol=tol, rtol=0)


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_no_autograd_graph(name: str) -> None:
    J = torch.randn(3, 4, requires_grad=True)
    out = _make(name)(J, COUNTS, LOSSES)
    assert not out.requires_grad


class _ReadsOf(TorchDispatchMode):
    """Counts the elements of ``J`` read by every aten operation that takes a tensor sharing its storage, one entry
    per operation; views (operations whose output shares that storage, e.g. ``split``) read nothing."""

    def __init__(self, J: Tensor) -> None:
        super().__init__()
        self._storage = J.untyped_storage().data_ptr()
        self.elements: list[int] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        aliases = any(
            isinstance(o, Tensor) and o.untyped_storage().data_ptr() == self._storage for o in tree_leaves(out)
        )
        if not aliases:
            read = sum(
                a.numel()
                for a in tree_leaves((args, kwargs))
                if isinstance(a, Tensor) and a.untyped_storage().data_ptr() == self._storage
            )
            if read:
                self.elements.append(read)
        return out


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_gramian_computed_once_and_J_read_only_twice(name: str) -> None:
    # The performance contract of `Aggregator`: J Jᵀ once and one `w @ J` for the output (each block by block, in
    # float64, each element once), no other pass over J. 300_000 columns: several blocks.
    J = torch.randn(3, 300_000, generator=torch.Generator().manual_seed(5))
    agg = _make(name)
    with _ReadsOf(J) as reads:
        agg(J, COUNTS, LOSSES)
    assert sum(reads.elements) == 2 * J.numel(), reads.elements
    assert len(reads.elements) > 2  # in blocks


@pytest.mark.parametrize(
    ("J", "counts", "match"),
    [
        (torch.zeros(4), None, "matrix"),
        (torch.zeros(3, 4, dtype=torch.int64), None, "floating"),
        (torch.zeros(0, 4), None, "at least one row"),
        (torch.zeros(3, 4), torch.ones(2), "counts"),
    ],
)
def test_invalid_inputs(J: torch.Tensor, counts: torch.Tensor | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_aggregator("sum")(J, counts)


@pytest.mark.parametrize("name", ["uncertainty", "famo"])
def test_loss_weighting_methods_need_finite_losses_of_every_task(name: str) -> None:
    J = torch.randn(3, 4)
    with pytest.raises(ValueError, match="needs `losses`"):
        make_aggregator(name)(J, COUNTS)
    with pytest.raises(ValueError, match=r"losses must have shape \[T\]=\[3\]"):
        make_aggregator(name)(J, COUNTS, LOSSES[:2])
    with pytest.raises(ValueError, match="losses must be finite"):
        make_aggregator(name)(J, COUNTS, torch.tensor([1.0, float("nan"), 2.0]))


def test_bind_validates_layout() -> None:
    agg = make_aggregator("sum")
    agg.bind([("a", 3), ("b", 2)], 3)
    with pytest.raises(ValueError, match="layout"):
        agg.bind([("a", -1)], 3)
    with pytest.raises(ValueError, match="n_tasks"):
        agg.bind([("a", 1)], 0)


def test_a_non_finite_row_is_named() -> None:
    from mtbert.aggregators._base import NonFiniteJacobian

    J = torch.ones(3, 4)
    J[1, 2] = float("nan")
    with pytest.raises(NonFiniteJacobian) as info:
        make_aggregator("pcgrad")(J)
    assert (str(info.value), info.value.rows) == ("J has non-finite values in row(s) [1]", [1])


@pytest.mark.parametrize(
    "entry",
    [5, ("a",), ("a", 1, 2), (3, 3), ("a", 1.5), ("a", True), ("a", -1)],
    ids=["not-a-pair", "one-item", "three-items", "name-not-str", "float-numel", "bool-numel", "negative-numel"],
)
def test_bind_refuses_each_malformed_layout_entry(entry: object) -> None:
    agg = make_aggregator("sum")
    message = f"layout entries must be (name: str, numel: int >= 0). Found {entry!r}."
    with pytest.raises(ValueError, match=re.escape(message)):
        agg.bind([("a", 3), entry], 3)


@pytest.mark.parametrize("n_tasks", [0, -1, True, 2.0])
def test_bind_refuses_a_task_count_that_is_not_a_positive_integer(n_tasks: object) -> None:
    message = f"n_tasks must be a positive integer. Found n_tasks={n_tasks!r}."
    with pytest.raises(ValueError, match=re.escape(message)):
        make_aggregator("sum").bind([("a", 1)], n_tasks)


def test_bind_accepts_an_empty_tensor_and_a_single_task() -> None:
    agg = make_aggregator("sum")
    agg.bind([("a", 0), ("b", 2), ("c", 0)], 1)  # numel >= 0: a parameter with no elements is a valid entry
    torch.testing.assert_close(agg(torch.tensor([[1.0, 2.0]])), torch.tensor([1.0, 2.0]))


def test_seed_accepts_the_largest_generator_seed_only() -> None:
    largest = 2**63 - 1
    agg = make_aggregator("pcgrad", seed=largest)
    assert agg.seed == largest
    generator = torch.Generator().manual_seed(largest)
    torch.testing.assert_close(agg.rng_state, generator.get_state(), atol=0, rtol=0)
    with pytest.raises(ValueError, match=re.escape("Found seed=9223372036854775808.")):
        make_aggregator("pcgrad", seed=largest + 1)


def test_pcgrad_draws_one_set_of_orders_per_step() -> None:
    """The stored generator advances by exactly the orders a step uses, so the k-th step's orders are the k-th draw of
    a generator seeded alike (what makes a resumed run continue with the same orders)."""
    from mtbert.aggregators._base import draw_orders

    J = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, -1.0]], dtype=torch.float64)
    agg = make_aggregator("pcgrad", seed=11)
    generator = torch.Generator().manual_seed(11)
    for _ in range(3):
        agg(J)
        draw_orders(3, generator)
        assert torch.equal(agg.rng_state, generator.get_state())


def test_a_non_finite_loss_is_named() -> None:
    from mtbert.aggregators._base import NonFiniteJacobian

    with pytest.raises(NonFiniteJacobian) as info:
        make_aggregator("famo")(torch.ones(3, 4), None, torch.tensor([1.0, float("nan"), float("inf")]))
    assert str(info.value) == "losses must be finite. Found losses=[1.0, nan, inf]."
    assert info.value.rows == [1, 2]


def test_losses_are_read_in_float64_whatever_their_dtype() -> None:
    # FAMO's gap L - m + 1e-8 in float32 would round both the 0.1 and the 1e-8 away (relative 3e-8 on the weights).
    J = torch.eye(2, dtype=torch.float64)
    losses = torch.tensor([1.0, 3.0])  # exact in float32
    ours = make_aggregator("famo", min_loss=0.1)(J, None, losses)
    gap = losses.double() - 0.1 + 1e-8
    expected = (1 / gap) / (1 / gap).sum()  # first step: uniform z, w ∝ 1 / (L - m)
    torch.testing.assert_close(ours, expected, atol=1e-15, rtol=0)
