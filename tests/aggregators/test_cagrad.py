"""CAGrad (Liu et al. 2021): c = 0 is the sum; the worst task's gain is what the method maximises; torchjd golden.

The authors' ``overwrite_grad`` multiplies the direction by the number of tasks "to match the sum loss"; torchjd's
``CAGrad`` does not: ours follows the authors, so it is ``T`` times torchjd's (asserted below)."""

import re
import warnings

import pytest
import torch
from _aggregation_asserts import conflicting
from torchjd.aggregation import CAGrad as TorchJDCAGrad

from mtbert.aggregators import make_aggregator

F64 = torch.float64


@pytest.mark.parametrize("seed", range(3))
def test_c_zero_is_the_sum(seed: int) -> None:
    J = conflicting(seed)
    torch.testing.assert_close(make_aggregator("cagrad", c=0.0)(J), J.sum(0), atol=1e-12, rtol=0)


@pytest.mark.parametrize("seed", range(3))
def test_golden_against_torchjd_without_rescaling(seed: int) -> None:
    """torchjd solves the same dual with cvxpy/Clarabel on the normalised Gramian; ours with SLSQP (as the authors)
    and the exact gradient: the two agree to 1e-4, and ours is the better of the two on the primal objective (the
    worst task's gain on the ball), where torchjd's solver stops ~1e-4 short of it."""
    J = conflicting(seed)
    ours, theirs = make_aggregator("cagrad", c=0.4, rescale=0)(J), TorchJDCAGrad(c=0.4)(J) * len(J)
    assert (ours - theirs).norm() <= 1e-4 * theirs.norm()
    assert (J @ ours).min() >= (J @ theirs).min()


@pytest.mark.parametrize("rescale", [0, 1, 2])
def test_rescale_divides_as_the_authors_code(rescale: int) -> None:
    J = conflicting(0)
    plain = make_aggregator("cagrad", c=0.5, rescale=0)(J)
    factor = {0: 1.0, 1: 1.25, 2: 1.5}[rescale]
    torch.testing.assert_close(make_aggregator("cagrad", c=0.5, rescale=rescale)(J), plain / factor)


def test_the_defaults_are_the_authors_c_and_rescale() -> None:
    """The authors' defaults (``c = 0.4``, ``rescale = 1``): what a params file without options gets."""
    J = conflicting(0)
    torch.testing.assert_close(
        make_aggregator("cagrad")(J), make_aggregator("cagrad", c=0.4, rescale=1)(J), atol=0, rtol=0
    )


@pytest.mark.parametrize("seed", range(3))
def test_the_worst_tasks_gain_is_maximal_within_the_ball(seed: int) -> None:
    """Primal of CAGrad: d maximises min_i g_iᵀ d over |d - g_0| <= c |g_0|; d lies on the ball and beats the mean and
    random points of the ball on the worst task's gain."""
    J, c = conflicting(seed), 0.4
    d, g0 = make_aggregator("cagrad", c=c, rescale=0)(J) / len(J), J.mean(0)
    radius = c * g0.norm()
    assert (d - g0).norm() == pytest.approx(radius.item(), rel=1e-9)
    worst = (J @ d).min()
    assert worst >= (J @ g0).min()
    noise = torch.randn(200, J.shape[1], generator=torch.Generator().manual_seed(seed), dtype=F64)
    candidates = g0 + radius * noise / noise.norm(dim=1, keepdim=True)
    assert worst >= (candidates @ J.T).min(dim=1).values.max() - 1e-6 * g0.norm() ** 2


@pytest.mark.parametrize("seed", range(4))
def test_the_weighted_tasks_gains_tie(seed: int) -> None:
    """KKT conditions of the dual: every task with a positive dual weight has the same gain g_iᵀ d (the worst one), so
    the search over |g_w| must be exact well below scipy's default tolerance (1e-5), where the gains split ~1e-6."""
    J = conflicting(seed)
    agg = make_aggregator("cagrad", c=0.4, rescale=0)
    gains = J @ agg(J)
    weighted = agg.last_stats["weights"] > 1 + 1e-6  # T (mean + lean): the dual weights are the lean's
    assert weighted.sum() >= 2
    assert (gains[weighted].max() - gains[weighted].min()).item() <= 1e-7 * gains.abs().max().item()
    assert (gains[~weighted] >= gains[weighted].max()).all()


@pytest.mark.parametrize("scale", [1e-80, 1e80])
def test_weights_are_invariant_to_the_gradients_scale(scale: float) -> None:
    """Unlike the authors' SLSQP on the raw Gramian: the problem is solved on the trace-normalised Gramian."""
    J = conflicting(0)
    agg = make_aggregator("cagrad")
    agg(J)
    reference = agg.last_stats["weights"].clone()
    agg(J * scale)
    torch.testing.assert_close(agg.last_stats["weights"], reference, rtol=1e-6, atol=0)


@pytest.mark.parametrize("c", [0.4, 0.9])
def test_near_stationary_gradients_by_hand(c: float) -> None:
    """Three unit gradients at 120°, the first lengthened by 3ε: g_0 = ε e_1. On the ball |d - g_0| <= cε (c < 1),
    d_x > 0 leaves tasks 2 and 3 the worst, with gain -d_x / 2 (d_y = 0 by symmetry): the best is d = (1 - c) g_0."""
    eps, s = 1e-3, 3**0.5 / 2
    J = torch.tensor([[1 + 3 * eps, 0.0, 0.0], [-0.5, s, 0.0], [-0.5, -s, 0.0]], dtype=F64)
    expected = torch.tensor([3 * (1 - c) * eps, 0.0, 0.0], dtype=F64)  # T × the mean's direction
    torch.testing.assert_close(make_aggregator("cagrad", c=c, rescale=0)(J), expected, rtol=0, atol=1e-9 * eps)


def test_zero_gradients_give_zero_and_the_sums_weights() -> None:
    J = torch.zeros(3, 5, dtype=F64)
    agg = make_aggregator("cagrad")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = agg(J)
    assert torch.equal(d, torch.zeros(5, dtype=F64))
    assert torch.equal(agg.last_stats["weights"], torch.ones(3, dtype=F64))


def test_invalid_options_name_the_option() -> None:
    with pytest.raises(ValueError, match=re.escape("Option `c` must be a float >= 0. Found c=-0.1")):
        make_aggregator("cagrad", c=-0.1)
    with pytest.raises(ValueError, match=r"Option `rescale` must be one of \[0, 1, 2\]. Found rescale=3"):
        make_aggregator("cagrad", rescale=3)
