"""Sample-weighted PCGrad: PCGrad on rows scaled by 1/n_i, absent tasks excluded."""

import pytest
import torch

from mtbert.aggregators import PCGrad, SampleWeightedPCGrad

J = torch.tensor([[4.0, 2.0, -1.0, 0.0], [-2.0, 1.0, 0.0, 3.0], [1.0, -3.0, 2.0, 1.0]], dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pcgrad_on_rows_scaled_by_inverse_counts(seed: int) -> None:
    counts = torch.tensor([4.0, 1.0, 2.0])
    scaled = J / counts[:, None].double()
    torch.testing.assert_close(SampleWeightedPCGrad(seed=seed)(J, counts), PCGrad(seed=seed)(scaled))


def test_integer_counts_accepted() -> None:
    counts = torch.tensor([4, 1, 2])
    expected = PCGrad()(J / counts[:, None].double())
    torch.testing.assert_close(SampleWeightedPCGrad()(J, counts), expected)


def test_zero_count_rows_are_absent() -> None:
    counts = torch.tensor([2.0, 0.0, 4.0])
    J_with_garbage = J.clone()
    J_with_garbage[1] = torch.tensor([-100.0, -100.0, 100.0, 100.0])  # must be ignored entirely
    agg = SampleWeightedPCGrad()
    out = agg(J_with_garbage, counts)
    present = J[[0, 2]] / torch.tensor([[2.0], [4.0]], dtype=torch.float64)
    torch.testing.assert_close(out, PCGrad()(present))
    assert agg.last_stats["weights"][1] == 0
    assert agg.last_stats["corrections"][1].sum() == 0 and agg.last_stats["corrections"][:, 1].sum() == 0
    torch.testing.assert_close(agg.last_gramian, J_with_garbage @ J_with_garbage.T)


def test_all_absent_gives_zero() -> None:
    out = SampleWeightedPCGrad()(J, torch.zeros(3))
    torch.testing.assert_close(out, torch.zeros(4, dtype=torch.float64))


def test_missing_counts_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="needs `counts`"):
        SampleWeightedPCGrad()(J)


@pytest.mark.parametrize("counts", [torch.tensor([1.0, -1.0, 2.0]), torch.tensor([1.0, float("nan"), 2.0])])
def test_invalid_counts_rejected(counts: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        SampleWeightedPCGrad()(J, counts)
