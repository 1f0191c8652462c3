"""CAGrad (Liu et al. 2021): c = 0 is the sum; the worst task's gain is what the method maximises; torchjd golden.

The authors' ``overwrite_grad`` multiplies the direction by the number of tasks "to match the sum loss"; torchjd's
``CAGrad`` does not: ours follows the authors, so it is ``T`` times torchjd's (asserted below)."""

import re

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


def test_invalid_options_name_the_option() -> None:
    with pytest.raises(ValueError, match=re.escape("Option `c` must be a float >= 0. Found c=-0.1")):
        make_aggregator("cagrad", c=-0.1)
    with pytest.raises(ValueError, match=r"Option `rescale` must be one of \[0, 1, 2\]. Found rescale=3"):
        make_aggregator("cagrad", rescale=3)
