"""Nash-MTL (Navon et al. 2022): the weights solve the bargaining condition G α = 1/α; torchjd golden; state."""

import warnings

import pytest
import torch
from _aggregation_asserts import conflicting
from torchjd.aggregation import NashMTL as TorchJDNashMTL

from mtbert.aggregators import _nashmtl, make_aggregator

F64 = torch.float64


@pytest.mark.parametrize("seed", range(5))
def test_weights_solve_the_bargaining_condition(seed: int) -> None:
    """G α = 1/α: each task's gain g_iᵀ d is 1/α_i (max_norm 0 keeps α unscaled)."""
    J = conflicting(seed) * 10 ** (seed - 2)  # any scale
    agg = make_aggregator("nashmtl", max_norm=0.0)
    d = agg(J)
    alpha = agg.last_stats["weights"]
    assert (alpha > 0).all()
    torch.testing.assert_close(J @ d, 1 / alpha, rtol=1e-5, atol=0)


@pytest.mark.parametrize("seed", range(3))
def test_golden_against_torchjd(seed: int) -> None:
    """torchjd (the authors' cvxpy/ECOS iterations) reaches the same α when it converges."""
    J = conflicting(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy: "problem is not DPP"
        theirs = TorchJDNashMTL(n_tasks=3, max_norm=1.0, optim_niter=200)(J)
    torch.testing.assert_close(make_aggregator("nashmtl")(J), theirs, rtol=1e-4, atol=1e-7)


def test_max_norm_caps_the_output_and_heads_get_alpha() -> None:
    J = conflicting(0) * 100
    agg = make_aggregator("nashmtl", max_norm=0.5)
    d = agg(J)
    assert d.norm().item() == pytest.approx(0.5)
    unscaled = make_aggregator("nashmtl", max_norm=0.0)
    unscaled(J)
    torch.testing.assert_close(agg.own_weights, unscaled.last_stats["weights"])


def test_update_weights_every_reuses_alpha_and_the_state_round_trips() -> None:
    J1, J2 = conflicting(0), conflicting(1)
    agg = make_aggregator("nashmtl", update_weights_every=2)
    agg(J1)
    first = agg.alpha.clone()
    agg(J2)  # step 2 of every 2: α kept
    torch.testing.assert_close(agg.alpha, first)
    steps = agg.state_dict()["steps"]
    assert steps.dtype == torch.int64 and steps.item() == 2  # the checkpoint counts the steps exactly
    copy = make_aggregator("nashmtl", update_weights_every=2)
    copy.load_state_dict(agg.state_dict())
    torch.testing.assert_close(copy(J2), agg(J2))  # step 3: both solve, warm-started from the same α


def test_the_default_solves_at_every_step() -> None:
    """update_weights_every = 1 (the default): each step's α solves that step's condition, not a previous step's."""
    agg = make_aggregator("nashmtl", max_norm=0.0)
    for seed in range(3):
        J = conflicting(seed)
        d = agg(J)
        torch.testing.assert_close(J @ d, 1 / agg.last_stats["weights"], rtol=1e-5, atol=0)


def test_the_solve_is_warm_started_from_the_previous_alpha(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the same Jacobian again, Newton starts at the (normalised) solution it found: G α = 1/α holds already."""
    starts = []
    newton = _nashmtl._newton

    def spy(G: torch.Tensor, w: torch.Tensor, alpha: float, max_iters: int) -> torch.Tensor:
        starts.append((G, w.clone()))
        return newton(G, w, alpha, max_iters)

    monkeypatch.setattr(_nashmtl, "_newton", spy)
    J = conflicting(0)
    agg = make_aggregator("nashmtl")
    agg(J)
    agg(J)
    assert len(starts) == 2
    G, start = starts[1]
    torch.testing.assert_close(G @ start, 1 / start, rtol=1e-9, atol=0)


def test_max_norm_rescales_a_direction_the_ridge_shortened() -> None:
    """Nearly opposite gradients: the ridge bounds α, so ||d|| < 1 (not sqrt(T)); still longer than max_norm = 0.5, d
    is rescaled to exactly that norm."""
    J = torch.tensor([[1.0, 0.0], [-1.0, 1e-5]], dtype=F64)
    unscaled = make_aggregator("nashmtl", max_norm=0.0)(J).norm().item()
    assert 0.5 < unscaled < 1
    assert make_aggregator("nashmtl", max_norm=0.5)(J).norm().item() == pytest.approx(0.5, rel=1e-5)


def test_invalid_options_name_the_option() -> None:
    with pytest.raises(ValueError, match="Option `update_weights_every` must be an integer >= 1"):
        make_aggregator("nashmtl", update_weights_every=0)
    with pytest.raises(ValueError, match="Option `max_norm` must be a float >= 0"):
        make_aggregator("nashmtl", max_norm=-1.0)


def test_fair_weights_default_is_nash_mtls_condition_by_hand() -> None:
    """Orthogonal rows of squared norms 4 and 1: ``G w = 1 / w`` gives ``w_i = 1 / |g_i|`` = (1/2, 1) (alpha = 1, the
    default); alpha = 2 would give ``|g_i|^(-4/3)``."""
    G = torch.diag(torch.tensor([4.0, 1.0], dtype=F64))
    torch.testing.assert_close(_nashmtl.fair_weights(G), torch.tensor([0.5, 1.0], dtype=F64), rtol=1e-9, atol=0)


def test_fair_weights_give_a_zero_row_weight_zero_and_the_others_theirs() -> None:
    J = conflicting(0)
    G = J @ J.T
    alone = _nashmtl.fair_weights(G)
    with_zero = torch.zeros(4, 4, dtype=F64)
    with_zero[:3, :3] = G
    weights = _nashmtl.fair_weights(with_zero)
    assert weights[3] == 0.0
    torch.testing.assert_close(weights[:3], alone, rtol=1e-9, atol=0)


def test_fair_weights_from_a_start_holding_a_zero_solve_from_one_there() -> None:
    """A task absent from the previous step has weight 0 there: the warm start replaces it by 1 (a zero start would
    put 1/0 in Newton's first step)."""
    J = conflicting(1)
    G = J @ J.T
    expected = _nashmtl.fair_weights(G)
    start = expected.clone()
    start[1] = 0.0
    actual = _nashmtl.fair_weights(G, 1.0, start)
    assert torch.isfinite(actual).all()
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=0)
