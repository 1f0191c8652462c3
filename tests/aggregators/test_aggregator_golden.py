"""Frozen outputs for a fixed 3x4 Jacobian (computed once and checked by hand, see comments)."""

import pytest
import torch

from mtbert.aggregators import AGGREGATOR_NAMES, make_aggregator

# G = J Jᵀ = [[6, 0, -3.5], [0, 6, -1], [-3.5, -1, 6.25]]: pairs (0, 2) and (1, 2) conflict.
J = torch.tensor([[1.0, 2.0, -1.0, 0.0], [-2.0, 1.0, 0.0, 1.0], [0.5, -1.0, 2.0, 1.0]], dtype=torch.float64)
COUNTS = torch.tensor([2.0, 1.0, 4.0])

GOLDEN = {
    # Σ rows.
    "sum": ({}, [-0.5, 2.0, 1.0, 2.0]),
    # 1·g0 + 2·g1 + 3·g2.
    "weighted": ({"weights": [1.0, 2.0, 3.0]}, [-1.5, 1.0, 5.0, 5.0]),
    # Seed 0 orders [[1, 2], [2, 0], [1, 0]] give weights [1 + 0.56/6 + 3.5/6, 1 + 1/6, 0.56 + 0.16 + 1]
    # = [1.67667, 1.16667, 1.72] (by hand from G).
    "pcgrad": ({}, [0.2033, 2.8, 1.7633, 2.8867]),
    # Same orders on D G D with D = diag(1/2, 1, 1/4): weights [0.73917, 1.04167, 0.69].
    "swpcgrad": ({}, [-0.9992, 1.83, 0.6408, 1.7317]),
    # First step, zero targets: identical to PCGrad.
    "gradvac": ({}, [0.2033, 2.8, 1.7633, 2.8867]),
    # Convex combination with d·g_i ≥ ||d||² (Frank-Wolfe, so only to ~1e-3 here).
    "mgda": ({}, [0.1448, 0.5905, 0.4095, 0.6158]),
    # d·g_i/||g_i|| = 0.3711 for all three rows.
    "imtlg": ({}, [0.1472, 0.5873, 0.4127, 0.6162]),
    # σ_min/3 · 1ᵀ U Vᵀ from the SVD of J.
    "alignedmtl": ({}, [0.0145, 0.5811, 0.3596, 0.6004]),
}


def test_golden_table_covers_every_aggregator() -> None:
    assert set(GOLDEN) == set(AGGREGATOR_NAMES)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_value(name: str) -> None:
    options, expected = GOLDEN[name]
    out = make_aggregator(name, **options)(J, COUNTS)
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64), atol=1e-4, rtol=0)


def test_gradvac_second_step_golden() -> None:
    # beta = 0.5: after step 1 the target of (0, 2) is 0.5·cos(g0, g2) = -0.2858; step 2 moves it
    # to 0.5·(-0.2858) + 0.5·(-0.5715) = -0.4287 and corrects towards it.
    agg = make_aggregator("gradvac", beta=0.5)
    agg(J)
    out = agg(J)
    torch.testing.assert_close(
        out, torch.tensor([-0.1338, 2.3512, 1.4681, 2.4852], dtype=torch.float64), atol=1e-4, rtol=0
    )
    assert agg.targets is not None
    assert agg.targets[0, 0, 2].item() == pytest.approx(-0.4287, abs=1e-4)
