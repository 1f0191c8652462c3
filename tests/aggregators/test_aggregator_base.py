"""Behaviour shared by every aggregator: shapes, the Gramian, input checks."""

import pytest
import torch

from mtbert.aggregators import AGGREGATOR_NAMES, Aggregator, make_aggregator

OPTIONS = {"weighted": {"weights": [1.0, 0.5, 2.0]}}
COUNTS = torch.tensor([3.0, 1.0, 2.0])


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


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_gramian_weighted_output_is_weights_times_J(name: str) -> None:
    J = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    agg = _make(name)
    out = agg(J, COUNTS)
    weights = agg.last_stats.get("weights")
    if weights is None:  # gradvac: one weight vector per group
        weights = agg.last_stats["group_weights"][0]
    torch.testing.assert_close(out, weights @ J)


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_no_autograd_graph(name: str) -> None:
    J = torch.randn(3, 4, requires_grad=True)
    out = _make(name)(J, COUNTS)
    assert not out.requires_grad


def test_gramian_computed_once_per_call() -> None:
    J = torch.randn(3, 6)
    agg = make_aggregator("pcgrad")
    calls = 0
    original = agg._compute_gramian

    def counting(matrix: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return original(matrix)

    agg._compute_gramian = counting  # type: ignore[method-assign]
    agg(J)
    assert calls == 1


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
