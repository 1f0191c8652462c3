"""Golden outputs for a fixed 3x4 Jacobian, each derived by hand or in exact arithmetic from the method's definition
(never read back from our own output): the weights, and the direction ``weights @ J`` written out."""

import math

import pytest
import torch
from _aggregation_asserts import assert_min_norm_optimality

from mtbert.aggregators import AGGREGATOR_NAMES, make_aggregator

# G = J Jᵀ = [[6, 0, -3.5], [0, 6, -1], [-3.5, -1, 6.25]]: pairs (0, 2) and (1, 2) conflict.
J = torch.tensor([[1.0, 2.0, -1.0, 0.0], [-2.0, 1.0, 0.0, 1.0], [0.5, -1.0, 2.0, 1.0]], dtype=torch.float64)
COUNTS = torch.tensor([2.0, 1.0, 4.0])
SQRT6 = math.sqrt(6.0)

# name: (options, weights, direction, atol)
GOLDEN = {
    # Σ rows.
    "sum": ({}, [1.0, 1.0, 1.0], [-0.5, 2.0, 1.0, 2.0], 1e-12),
    # 1·g0 + 2·g1 + 3·g2.
    "weighted": ({"weights": [1.0, 2.0, 3.0]}, [1.0, 2.0, 3.0], [-1.5, 1.0, 5.0, 5.0], 1e-12),
    # Seed 0 orders [[1, 2], [2, 0], [1, 0]] give weights [1 + 0.56/6 + 3.5/6, 1 + 1/6, 0.56 + 0.16 + 1] (by hand
    # from G).
    "pcgrad": ({}, [503 / 300, 7 / 6, 43 / 25], [61 / 300, 14 / 5, 529 / 300, 433 / 150], 1e-12),
    # Same orders on D G D with D = diag(1/2, 1, 1/4) (G' = [[1.5, 0, -0.4375], [0, 6, -0.25], [., ., 0.390625]]):
    # [1 + (0.28 + 0.4375)/1.5, 1 + 0.25/6, 1.12 + 0.64 + 1] on the scaled rows, times D.
    "swpcgrad": ({}, [887 / 1200, 25 / 24, 69 / 100], [-1199 / 1200, 183 / 100, 769 / 1200, 1039 / 600], 1e-12),
    # First step, zero targets: identical to PCGrad.
    "gradvac": ({}, [503 / 300, 7 / 6, 43 / 25], [61 / 300, 14 / 5, 529 / 300, 433 / 150], 1e-12),
    # The min-norm point is inside the simplex: G w = λ 1 with Σw = 1 gives w = (244, 139, 252)/635 > 0, and
    # g_i·d = ||d||² = 582/635 for all three rows.
    "mgda": ({}, [244 / 635, 139 / 635, 252 / 635], [92 / 635, 375 / 635, 260 / 635, 391 / 635], 1e-12),
    # w ∝ G⁻¹ (||g_i||) = G⁻¹ (√6, √6, 5/2), normalised to Σw = 1 (exact); d·g_i/||g_i|| = 0.371136883176 for all rows.
    "imtlg": (
        {},
        [(39230 - 3395 * SQRT6) / 80539, (37745 - 8245 * SQRT6) / 80539, (3564 + 11640 * SQRT6) / 80539],
        [0.1471845749853, 0.5873038045079, 0.4126961954921, 0.6161613339717],
        1e-10,
    ),
    # σ_min · G^{-1/2} 1 with σ_min² = (49 - √849)/8, the smallest root of det(G - λI) = -(λ - 6)(4λ² - 49λ + 97)/4
    # (eigendecomposition of G in 40-digit arithmetic; three times the mean of the aligned rows, written out).
    "alignedmtl": (
        {},
        [3 * 0.3403220394223, 3 * 0.2503950606591, 3 * 0.3499595678005],
        [3 * 0.01451170200431, 3 * 0.5810795717033, 3 * 0.3595970961786, 3 * 0.6003546284596],
        1e-10,
    ),
}


# Methods whose golden values are torchjd's (their own test files) or that weigh by the losses (test_lossweights).
AGAINST_TORCHJD = {"upgrad", "dualproj", "cagrad", "nashmtl", "config", "fairgrad"}
LOSS_WEIGHTING = {"uncertainty", "famo"}


def test_golden_table_covers_every_aggregator() -> None:
    assert set(GOLDEN) | AGAINST_TORCHJD | LOSS_WEIGHTING == set(AGGREGATOR_NAMES)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_table_is_consistent(name: str) -> None:
    _, weights, direction, _ = GOLDEN[name]
    torch.testing.assert_close(
        torch.tensor(weights, dtype=torch.float64) @ J, torch.tensor(direction, dtype=torch.float64), atol=1e-12, rtol=0
    )


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_value(name: str) -> None:
    options, weights, direction, atol = GOLDEN[name]
    agg = make_aggregator(name, **options)
    out = agg(J, COUNTS)
    torch.testing.assert_close(out, torch.tensor(direction, dtype=torch.float64), atol=atol, rtol=0)
    stats = agg.last_stats
    applied = stats["weights"] if "weights" in stats else stats["group_weights"][0]
    torch.testing.assert_close(applied, torch.tensor(weights, dtype=torch.float64), atol=atol, rtol=0)


def test_golden_mgda_optimality() -> None:
    d = make_aggregator("mgda")(J)
    assert (d @ d).item() == pytest.approx(582 / 635, abs=1e-12)
    assert_min_norm_optimality(J, d, torch.tensor([True, True, True]), tol=1e-12)


def test_golden_imtlg_equal_projections() -> None:
    d = make_aggregator("imtlg")(J)
    projections = (J @ d) / J.norm(dim=1)
    torch.testing.assert_close(projections, torch.full((3,), 0.371136883176, dtype=torch.float64), atol=1e-11, rtol=0)


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
