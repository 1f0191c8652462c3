"""PCGrad (Yu et al. 2020, Algorithm 1) properties."""

import itertools

import pytest
import torch
from torchjd.aggregation import PCGrad as TorchJDPCGrad

from mtbert.aggregators import PCGrad
from mtbert.aggregators._base import draw_orders
from mtbert.aggregators._pcgrad import pcgrad_coefficients


def reference_pcgrad(J: torch.Tensor, orders: list[list[int]]) -> torch.Tensor:
    """Direct transcription of Algorithm 1 on the gradient vectors (SUM of the surgered rows)."""
    out = torch.zeros_like(J[0])
    for i in range(J.shape[0]):
        g_pc = J[i].clone()
        for j in orders[i]:
            dot = g_pc @ J[j]
            if dot < 0:
                g_pc = g_pc - dot / (J[j] @ J[j]) * J[j]
        out += g_pc
    return out


def conflicting_3x5() -> torch.Tensor:
    J = torch.tensor(
        [[1.0, 2.0, -1.0, 0.0, 0.5], [-2.0, 1.0, 0.0, 1.0, -1.0], [0.5, -1.0, 2.0, 1.0, 0.0]],
        dtype=torch.float64,
    )
    G = J @ J.T
    assert (G[~torch.eye(3, dtype=torch.bool)] < 0).any()
    return J


def test_no_conflict_equals_sum() -> None:
    J = torch.tensor([[1.0, 0.0, 2.0], [1.0, 1.0, 0.0], [0.0, 3.0, 1.0]], dtype=torch.float64)
    assert ((J @ J.T) >= 0).all()
    agg = PCGrad()
    torch.testing.assert_close(agg(J), J.sum(dim=0))
    assert agg.last_stats["corrections"].sum() == 0


def test_two_conflicting_gradients_nonnegative_inner_products() -> None:
    J = torch.tensor([[1.0, 0.2], [-0.8, 1.0]], dtype=torch.float64)
    assert (J[0] @ J[1]) < 0
    out = PCGrad()(J)
    assert (J @ out >= 0).all()
    # Closed form for two tasks: each row loses its component along the other.
    g1, g2 = J
    expected = (g1 - (g1 @ g2) / (g2 @ g2) * g2) + (g2 - (g1 @ g2) / (g1 @ g1) * g1)
    torch.testing.assert_close(out, expected)


def test_equals_transcription_of_algorithm_1_with_aggregator_orders() -> None:
    J = conflicting_3x5()
    for seed in range(4):
        orders = draw_orders(3, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(PCGrad(seed=seed)(J), reference_pcgrad(J, orders))


def test_gramian_weighting_equals_transcription_for_every_order() -> None:
    J = conflicting_3x5()
    G = J @ J.T
    per_task = [list(itertools.permutations([j for j in range(3) if j != i])) for i in range(3)]
    results = set()
    for orders in itertools.product(*per_task):
        orders = [list(o) for o in orders]
        weights, _ = pcgrad_coefficients(G, orders)
        expected = reference_pcgrad(J, orders)
        torch.testing.assert_close(weights @ J, expected)
        results.add(tuple(round(x, 9) for x in expected.tolist()))
    assert len(results) > 1  # the order matters on this J, so the tests above are meaningful


def test_is_sum_not_mean_and_matches_torchjd_for_two_tasks() -> None:
    # With two tasks there is no order, so torchjd's PCGrad (a sum too) must agree exactly.
    J = torch.tensor([[1.0, 0.2, 0.3], [-0.8, 1.0, 0.1]], dtype=torch.float64)
    torch.testing.assert_close(PCGrad()(J), TorchJDPCGrad()(J))


def test_same_seed_same_result_independent_of_global_rng() -> None:
    J = conflicting_3x5()
    torch.manual_seed(0)
    a = PCGrad(seed=7)(J)
    torch.manual_seed(12345)
    torch.rand(10)
    b = PCGrad(seed=7)(J)
    torch.testing.assert_close(a, b)


def test_successive_calls_advance_the_generator_and_state_dict_resumes() -> None:
    J = conflicting_3x5()
    agg = PCGrad(seed=3)
    outputs = [agg(J) for _ in range(6)]
    assert len({tuple(o.tolist()) for o in outputs}) > 1  # orders are redrawn each step

    first = PCGrad(seed=3)
    for _ in range(3):
        first(J)
    resumed = PCGrad(seed=0)
    resumed.load_state_dict(first.state_dict())
    for k in range(3, 6):
        torch.testing.assert_close(resumed(J), outputs[k])

    agg.reset()
    torch.testing.assert_close(agg(J), outputs[0])


def test_corrections_stat_marks_projected_pairs() -> None:
    J = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    agg = PCGrad()
    agg(J)
    corrections = agg.last_stats["corrections"]
    # g0·g1 < 0 both ways; g2 conflicts with nobody (and its surgered version neither).
    assert corrections[0, 1] == 1 and corrections[1, 0] == 1
    assert corrections[2].sum() == 0 and corrections.diagonal().sum() == 0


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_bad_seed_rejected(seed: object) -> None:
    with pytest.raises(ValueError, match="`seed`"):
        PCGrad(seed=seed)  # type: ignore[arg-type]


def test_a_gradient_whose_squared_norm_underflows_is_not_projected_onto() -> None:
    """g1 = (-1e-170, 1e-171) conflicts with g0 = (1, 0), but ||g1||² underflows to 0 in float64: there is no
    normal plane to divide out, so g0 is left as it is (g1 is still projected onto g0's, which changes it by ~1e-170)
    and the output is g0 + g1, not a division by zero."""
    J = torch.tensor([[1.0, 0.0], [-1e-170, 1e-171]], dtype=torch.float64)
    G = J @ J.T
    assert G[1, 1] == 0 and G[0, 1] < 0
    weights, corrections = pcgrad_coefficients(G, [[1], [0]])
    assert corrections.tolist() == [[0, 0], [1, 0]]
    assert weights.tolist() == [1.0, 1.0]  # 1 + 1e-170 rounds to 1
    torch.testing.assert_close(PCGrad()(J), J.sum(dim=0), rtol=1e-15, atol=0)
