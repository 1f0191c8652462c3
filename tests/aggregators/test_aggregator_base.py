"""Behaviour shared by every aggregator: shapes, the Gramian, the weights applied, input checks."""

import math

import pytest
import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mtbert.aggregators import AGGREGATOR_NAMES, Aggregator, make_aggregator

OPTIONS = {"weighted": {"weights": [1.0, 0.5, 2.0]}}
COUNTS = torch.tensor([3.0, 1.0, 2.0])

SQRT2, SQRT5 = math.sqrt(2.0), math.sqrt(5.0)

# Each case: (J, its Gramian by hand, counts, options, weights derived by hand for every aggregator).
HAND_CASES = {
    # Two conflicting rows g0, g1: G = [[10, -4], [-4, 2]] = S² with S = [[3, -1], [-1, 1]], so G^{-1/2} = S⁻¹ =
    # ½[[1, 1], [1, 3]] and the singular values of J are the eigenvalues 2 ± √2 of S.
    "conflict": (
        [[2.0, 1.0, 2.0, 1.0], [-1.0, 0.0, -1.0, 0.0]],
        [[10.0, -4.0], [-4.0, 2.0]],
        [2.0, 1.0],
        {"weighted": {"weights": [2.0, 0.5]}},
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
            # σ_min G^{-1/2} 1/2 with σ_min = 2 - √2: (2 - √2)/2 · (1, 2).
            "alignedmtl": [1.0 - 1.0 / SQRT2, 2.0 - SQRT2],
        },
    ),
    # Three orthogonal rows of norms 1, 2, 4: G = diag(1, 4, 16).
    "orthogonal": (
        [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]],
        [[1.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 16.0]],
        [3.0, 1.0, 2.0],
        OPTIONS,
        {
            "sum": [1.0, 1.0, 1.0],
            "weighted": [1.0, 0.5, 2.0],
            "pcgrad": [1.0, 1.0, 1.0],  # no negative inner product: nothing projected
            "swpcgrad": [1.0 / 3.0, 1.0, 0.5],  # 1 / counts
            "gradvac": [1.0, 1.0, 1.0],  # every cosine is 0, not below the zero targets
            "mgda": [16.0 / 21.0, 4.0 / 21.0, 1.0 / 21.0],  # ∝ 1/||g_i||²
            "imtlg": [4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0],  # ∝ 1/||g_i||
            "alignedmtl": [1.0 / 3.0, 1.0 / 6.0, 1.0 / 12.0],  # σ_min/3 · 1/||g_i||, σ_min = 1
        },
    ),
}
# MGDA's Frank-Wolfe (default stopping constants) gets these weights to ~1e-5; the others are exact in float64.
HAND_TOL = {"mgda": 1e-3}


def _make(name: str) -> Aggregator:
    return make_aggregator(name, **OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_output_shape_dtype_and_last_gramian(name: str) -> None:
    J = torch.randn(3, 7, generator=torch.Generator().manual_seed(3))
    agg = _make(name)
    out = agg(J, COUNTS)
    assert out.shape == (7,)
    assert out.dtype == J.dtype
    assert agg.last_gramian is not None
    torch.testing.assert_close(agg.last_gramian, J @ J.T)
    assert all(isinstance(v, torch.Tensor) for v in agg.last_stats.values())


@pytest.mark.parametrize("case", sorted(HAND_CASES))
@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_output_is_hand_computed_weights_times_J(name: str, case: str) -> None:
    rows, gramian, counts, options, table = HAND_CASES[case]
    J = torch.tensor(rows, dtype=torch.float64)
    expected = torch.tensor(table[name], dtype=torch.float64)  # a new aggregator needs its hand weights here
    tol = HAND_TOL.get(name, 1e-12)
    agg = make_aggregator(name, **options.get(name, {}))
    out = agg(J, torch.tensor(counts))

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
    out = _make(name)(J, COUNTS)
    assert not out.requires_grad


class _ReadsOf(TorchDispatchMode):
    """Records every aten operation, views excepted, that reads a tensor sharing the storage of ``J``."""

    def __init__(self, J: Tensor) -> None:
        super().__init__()
        self._storage = J.untyped_storage().data_ptr()
        self.shapes: list[tuple[int, ...] | None] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        reads_J = any(
            isinstance(a, Tensor) and a.untyped_storage().data_ptr() == self._storage
            for a in tree_leaves((args, kwargs))
        )
        if reads_J and not func.is_view:
            self.shapes.append(tuple(out.shape) if isinstance(out, Tensor) else None)
        return out


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_gramian_computed_once_and_J_read_only_twice(name: str) -> None:
    # The performance contract of `Aggregator`: J Jᵀ once, one `w @ J` for the output, no other pass over J.
    J = torch.randn(3, 6, generator=torch.Generator().manual_seed(5))
    agg = _make(name)
    with _ReadsOf(J) as reads:
        agg(J, COUNTS)
    assert len(reads.shapes) == 2, reads.shapes
    gramian_shape, output_shape = reads.shapes
    assert gramian_shape == (3, 3)
    assert output_shape is not None and math.prod(output_shape) == 6


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


def test_bind_validates_layout() -> None:
    agg = make_aggregator("sum")
    agg.bind([("a", 3), ("b", 2)], 3)
    with pytest.raises(ValueError, match="layout"):
        agg.bind([("a", -1)], 3)
    with pytest.raises(ValueError, match="n_tasks"):
        agg.bind([("a", 1)], 0)
