"""FairGrad (Ban & Ji 2024): each task's gain is w_i^(-1/alpha); torchjd golden."""

import re

import pytest
import torch
from _aggregation_asserts import conflicting
from torchjd.aggregation import FairGrad as TorchJDFairGrad

from mtbert.aggregators import make_aggregator

F64 = torch.float64


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_each_tasks_gain_is_its_weight_to_the_minus_one_over_alpha(alpha: float, seed: int) -> None:
    J = conflicting(seed)
    agg = make_aggregator("fairgrad", alpha=alpha)
    d = agg(J)
    w = agg.last_stats["weights"]
    assert (w > 0).all()
    torch.testing.assert_close(J @ d, w ** (-1 / alpha), rtol=1e-4, atol=0)
    torch.testing.assert_close(agg.own_weights, w)


def test_alpha_zero_is_the_mean() -> None:
    J = conflicting(0)
    torch.testing.assert_close(make_aggregator("fairgrad", alpha=0.0)(J), J.mean(0))


@pytest.mark.parametrize("seed", range(3))
def test_golden_against_torchjd(seed: int) -> None:
    J = conflicting(seed)
    torch.testing.assert_close(make_aggregator("fairgrad", alpha=2.0)(J), TorchJDFairGrad(alpha=2.0)(J))


def test_invalid_options_name_the_option() -> None:
    with pytest.raises(ValueError, match=re.escape("Option `alpha` must be a float >= 0. Found alpha=-1")):
        make_aggregator("fairgrad", alpha=-1)
    with pytest.raises(
        ValueError, match=re.escape("Option `max_iters` must be an integer >= 1 or null. Found max_iters=0")
    ):
        make_aggregator("fairgrad", max_iters=0)
