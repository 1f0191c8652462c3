"""FairGrad (Ban & Ji 2024): each task's gain is w_i^(-1/alpha); torchjd golden.

The output is ``T Σ_i w_i g_i`` (the authors' ``overwrite_grad`` multiplies by the number of tasks; torchjd's
``FairGrad`` does not), and the heads keep their unweighted gradients (the authors replace only the shared ones)."""

import re

import pytest
import torch
from _aggregation_asserts import conflicting
from torchjd.aggregation import FairGrad as TorchJDFairGrad

from mtbert.aggregators import make_aggregator
from mtbert.aggregators._nashmtl import fair_weights

F64 = torch.float64


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_each_tasks_gain_is_its_weight_to_the_minus_one_over_alpha(alpha: float, seed: int) -> None:
    J = conflicting(seed) * 10 ** (seed - 1)  # any scale
    agg = make_aggregator("fairgrad", alpha=alpha)
    d = agg(J) / len(J)
    w = agg.last_stats["weights"] / len(J)
    assert (w > 0).all()
    torch.testing.assert_close(J @ d, w ** (-1 / alpha), rtol=1e-7, atol=0)  # the 1e-10 ridge
    assert agg.own_weights is None  # the heads' gradients stay as they are


def test_alpha_zero_is_the_sum() -> None:
    J = conflicting(0)
    agg = make_aggregator("fairgrad", alpha=0.0)
    torch.testing.assert_close(agg(J), J.sum(0))
    torch.testing.assert_close(agg.last_stats["weights"], torch.ones(3, dtype=F64))  # float64, as every method's


def test_defaults_are_proportional_fairness_and_100_iterations() -> None:
    assert repr(make_aggregator("fairgrad")) == "FairGrad(alpha=1.0, max_iters=100)"


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_each_step_continues_newton_from_the_previous_weights(alpha: float) -> None:
    """With one Newton iteration per step, step k on the same Gramian is k iterations from uniform weights (warm
    start): the first step is far from ``G w = w^(-1/alpha)``, eight steps meet it."""
    J = conflicting(0)
    G = J @ J.T
    agg = make_aggregator("fairgrad", alpha=alpha, max_iters=1)
    residuals = []
    for k in range(1, 9):
        agg(J)
        torch.testing.assert_close(agg.last, fair_weights(G, alpha, None, k), rtol=1e-12, atol=0)
        residuals.append((G @ agg.last - agg.last ** (-1 / alpha)).norm().item())
    assert residuals[0] > 1.0 and residuals[-1] < 1e-7


def test_state_before_the_first_step_restores_a_used_one() -> None:
    """A checkpoint written before FairGrad's first step (e.g. after a heads-only epoch) holds its empty state, so it
    loads into any FairGrad, and the next step is a fresh one's (no warm start)."""
    J = conflicting(0)
    fresh, used = make_aggregator("fairgrad"), make_aggregator("fairgrad")
    used(conflicting(1))
    used.load_state_dict(fresh.state_dict())
    assert torch.equal(used(J), fresh(J))


@pytest.mark.parametrize("seed", range(3))
def test_golden_against_torchjd(seed: int) -> None:
    """torchjd's least squares (the authors' solver, from uniform weights, scipy's tolerances) agrees to 1e-6; ours
    is T times its output, as the authors' code."""
    J = conflicting(seed)
    theirs = TorchJDFairGrad(alpha=2.0)(J) * len(J)
    torch.testing.assert_close(make_aggregator("fairgrad", alpha=2.0)(J), theirs, rtol=1e-6, atol=1e-9)


def test_invalid_options_name_the_option() -> None:
    with pytest.raises(ValueError, match=re.escape("Option `alpha` must be a float >= 0. Found alpha=-1")):
        make_aggregator("fairgrad", alpha=-1)
    with pytest.raises(ValueError, match=re.escape("Option `max_iters` must be an integer >= 1. Found max_iters=0")):
        make_aggregator("fairgrad", max_iters=0)
