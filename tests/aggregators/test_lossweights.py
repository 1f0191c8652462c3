"""Loss-weighting methods: uncertainty weighting (Kendall et al. 2018) and FAMO (Liu et al. 2023)."""

import math
import re

import pytest
import torch

from mtbert.aggregators import make_aggregator
from mtbert.aggregators._lossweights import adam_step

F64 = torch.float64
J = torch.eye(3, dtype=F64)  # the output's coordinates are the weights


@pytest.mark.parametrize("weight_decay", [0.01, None])  # None: adam_step's default, no decay (torch's default too)
def test_adam_step_is_torchs_adam(weight_decay: float | None) -> None:
    param, reference = torch.tensor([0.3, -1.0], dtype=F64), torch.nn.Parameter(torch.tensor([0.3, -1.0], dtype=F64))
    optimizer = torch.optim.Adam([reference], lr=0.05, weight_decay=weight_decay or 0.0)
    state = {"exp_avg": torch.zeros(2, dtype=F64), "exp_avg_sq": torch.zeros(2, dtype=F64), "step": torch.tensor(0)}
    decay = {} if weight_decay is None else {"weight_decay": weight_decay}
    for k in range(5):
        grad = torch.tensor([math.sin(k), math.cos(k)], dtype=F64)
        reference.grad = grad.clone()
        optimizer.step()
        adam_step(param, grad, state, lr=0.05, **decay)
    torch.testing.assert_close(param, reference.detach(), rtol=1e-12, atol=1e-14)


def test_uncertainty_weights_tend_to_one_over_each_loss() -> None:
    """exp(-s_i) L_i + s_i is minimal at s_i = log L_i: with constant losses the weights exp(-s_i) reach 1/L_i."""
    losses = torch.tensor([0.25, 1.0, 4.0])
    agg = make_aggregator("uncertainty", lr=0.05)
    first = agg(J, losses=losses)
    torch.testing.assert_close(first, torch.ones(3, dtype=F64))  # s = 0: the first step is sum
    for _ in range(2000):
        agg(J, losses=losses)
    torch.testing.assert_close(agg.own_weights, 1 / losses.double(), rtol=1e-2, atol=0)


def test_uncertainty_first_adam_step_by_hand_with_the_default_rate() -> None:
    """s = 0, so the first step is sum and s_i's gradient is 1 - L_i; Adam's first step moves s_i by
    -lr g_i / (|g_i| + 1e-8) with the default lr = 1e-2, so the second step's weights are exp(-s_i)."""
    losses = [0.5, 1.0, 2.0]
    s = [-0.01 * (1 - loss) / (abs(1 - loss) + 1e-8) for loss in losses]
    agg = make_aggregator("uncertainty")
    assert agg.lr == 0.01
    agg(J, losses=torch.tensor(losses, dtype=F64))
    torch.testing.assert_close(agg.param, torch.tensor(s, dtype=F64), rtol=1e-12, atol=0)
    out = agg(J, losses=torch.tensor(losses, dtype=F64))
    torch.testing.assert_close(out, torch.tensor([math.exp(-si) for si in s], dtype=F64), rtol=1e-12, atol=0)


@pytest.mark.parametrize(("name", "cls"), [("uncertainty", "Uncertainty"), ("famo", "FAMO")])
def test_a_stepped_method_refuses_another_number_of_tasks_by_name(name: str, cls: str) -> None:
    """Before its first Adam step (FAMO takes none at its first call) a method takes any number of tasks; after it,
    its state is sized for them."""
    agg = make_aggregator(name)
    agg(torch.eye(2, dtype=F64), losses=torch.tensor([1.0, 2.0]))  # not bound yet: sized for 2 tasks here
    agg.reset()
    for losses in ([1.0, 2.0, 0.5], [0.9, 1.5, 0.5]):  # reset, not stepped: re-sized for 3
        agg(J, losses=torch.tensor(losses))
    with pytest.raises(ValueError, match=re.escape(f"{cls} was bound to 3 tasks but got 2 losses.")):
        agg(torch.eye(2, dtype=F64), losses=torch.tensor([1.0, 2.0]))


def test_famo_weight_moves_toward_the_task_whose_loss_falls_slowest() -> None:
    """Task 0's loss stays, task 1's halves each step, task 2's falls by 10%: z = softmax(ξ) grows for task 0."""
    agg = make_aggregator("famo")
    losses = torch.tensor([1.0, 1.0, 1.0])
    agg(J, losses=losses)
    for _ in range(20):
        losses = losses * torch.tensor([1.0, 0.5, 0.9])
        agg(J, losses=losses)
    z = torch.softmax(agg.param, 0)
    assert z[0] > z[2] > z[1]
    assert z[0] > 1 / 3


def test_famo_one_step_of_the_papers_rule_by_hand() -> None:
    """Algorithm 1 with the fall between two steps' losses: δ = log L¹ - log L² = (log 2, log(2/1.8), log(4/4.4));
    with z = 1/3 the softmax Jacobian gives g = z (δ - zᵀδ) = (0.15292, -0.04301, -0.10990); Adam's first step moves
    ξ by -lr g / (|g| + 1e-8) (bias-corrected moments g and g²; ξ = 0, so no decay); the weights are z / L² scaled to
    sum 1. (Without the logs δ = (0.5, 0.2, -0.4) and g's second sign flips.)"""
    first, second = [1.0, 2.0, 4.0], [0.5, 1.8, 4.4]
    delta = [math.log(a / b) for a, b in zip(first, second, strict=True)]
    mean = sum(delta) / 3
    g = [(d - mean) / 3 for d in delta]
    assert g == pytest.approx([0.152916, -0.043013, -0.109903], abs=1e-6)
    xi = [-0.025 * gi / (abs(gi) + 1e-8) for gi in g]
    z = [math.exp(x) / sum(math.exp(y) for y in xi) for x in xi]
    w = [zi / (loss + 1e-8) for zi, loss in zip(z, second, strict=True)]
    expected = torch.tensor([wi / sum(w) for wi in w], dtype=F64)
    agg = make_aggregator("famo", lr=0.025, gamma=0.001)
    agg(J, losses=torch.tensor(first, dtype=F64))
    torch.testing.assert_close(agg(J, losses=torch.tensor(second, dtype=F64)), expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(agg.param, torch.tensor(xi, dtype=F64), rtol=1e-12, atol=0)


def test_famo_weights_are_the_gradient_of_the_weighted_log_losses() -> None:
    """w_i = z_i / (c L_i), c = Σ z_j / L_j: the gradient of Σ z_i log L_i scaled to sum 1."""
    agg = make_aggregator("famo")
    agg(J, losses=torch.tensor([1.0, 2.0, 3.0]))
    out = agg(J, losses=torch.tensor([0.9, 2.0, 1.0]))
    z = torch.softmax(agg.param, 0)
    expected = z / torch.tensor([0.9, 2.0, 1.0], dtype=F64)
    torch.testing.assert_close(out, expected / expected.sum())
    assert out.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["uncertainty", "famo"])
def test_state_round_trips(name: str) -> None:
    agg, losses = make_aggregator(name), [torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.8, 1.9, 0.6])]
    for value in losses:
        agg(J, losses=value)
    step = agg.state_dict()["step"]  # Adam's steps: one per call (FAMO: none at its first), an exact integer count
    assert (step.dtype, step.item()) == (torch.int64, 2 if name == "uncertainty" else 1)
    copy = make_aggregator(name)
    copy.load_state_dict(agg.state_dict())
    nxt = torch.tensor([0.7, 1.5, 0.6])
    torch.testing.assert_close(copy(J, losses=nxt), agg(J, losses=nxt), rtol=0, atol=0)


def test_invalid_options_name_the_option() -> None:
    with pytest.raises(ValueError, match=re.escape("Option `lr` must be a float > 0. Found lr=0")):
        make_aggregator("famo", lr=0)
    with pytest.raises(ValueError, match="Option `gamma` must be a float >= 0"):
        make_aggregator("famo", gamma=-1.0)
    with pytest.raises(ValueError, match="Option `lr` must be a float > 0"):
        make_aggregator("uncertainty", lr=float("nan"))


def test_famo_defaults_are_the_papers_and_min_loss_is_subtracted() -> None:
    """The hand step above with the defaults (lr 0.025, gamma 0.001) and with m = 0.25 subtracted from every loss
    before the logs and the weights."""
    first, second, m = [1.0, 2.0, 4.0], [0.5, 1.8, 4.4], 0.25
    delta = [math.log((a - m) / (b - m)) for a, b in zip(first, second, strict=True)]
    g = [(d - sum(delta) / 3) / 3 for d in delta]
    xi = [-0.025 * gi / (abs(gi) + 1e-8) for gi in g]
    z = [math.exp(x) / sum(math.exp(y) for y in xi) for x in xi]
    w = [zi / (loss - m + 1e-8) for zi, loss in zip(z, second, strict=True)]
    expected = torch.tensor([wi / sum(w) for wi in w], dtype=F64)
    agg = make_aggregator("famo", min_loss=m)
    agg(J, losses=torch.tensor(first, dtype=F64))
    out = agg(J, losses=torch.tensor(second, dtype=F64))
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(agg.own_weights, expected, rtol=1e-12, atol=0)  # the heads are weighed alike
    assert (make_aggregator("famo").lr, make_aggregator("famo").weight_decay) == (0.025, 0.001)


def test_famo_refuses_a_bad_min_loss_by_name() -> None:
    with pytest.raises(ValueError, match=re.escape("Option `min_loss` must be a float >= 0. Found min_loss=-1")):
        make_aggregator("famo", min_loss=-1)
