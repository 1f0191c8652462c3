"""ConFIG (Liu et al. 2025): the output makes equal angles with every task gradient; torchjd golden."""

import pytest
import torch
from torchjd.aggregation import ConFIG as TorchJDConFIG

from mtbert.aggregators import make_aggregator

F64 = torch.float64


@pytest.mark.parametrize("seed", range(5))
def test_output_makes_equal_angles_with_every_task_gradient(seed: int) -> None:
    J = torch.randn(3, 20, generator=torch.Generator().manual_seed(seed), dtype=F64)
    J[1] = -0.8 * J[0] + 0.3 * J[1]
    d = make_aggregator("config")(J)
    cosines = (J @ d) / (J.norm(dim=1) * d.norm())
    torch.testing.assert_close(cosines, cosines.mean().expand(3), atol=1e-10, rtol=0)
    assert cosines.min() > 0  # conflict-free: every task gains
    # Its length is the sum of the task gradients' projections on its direction.
    torch.testing.assert_close(d.norm(), (J @ d / d.norm()).sum())


@pytest.mark.parametrize("seed", range(3))
def test_golden_against_torchjd(seed: int) -> None:
    """torchjd takes the pseudo-inverse of the [T, P] unit rows; ours works on the Gramian: the same direction."""
    J = torch.randn(3, 30, generator=torch.Generator().manual_seed(seed), dtype=F64)
    torch.testing.assert_close(make_aggregator("config")(J), TorchJDConFIG()(J), atol=1e-10, rtol=1e-8)


def test_a_zero_row_gets_no_weight() -> None:
    J = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]], dtype=F64)
    agg = make_aggregator("config")
    agg(J)
    assert agg.last_stats["weights"][1] == 0
    torch.testing.assert_close(agg(J), TorchJDConFIG()(J))
