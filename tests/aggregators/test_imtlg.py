"""IMTL-G (Liu et al., ICLR 2021): equal projections of the update onto every task's unit gradient."""

import pytest
import torch

from mtbert.aggregators import IMTLG


@pytest.mark.parametrize("seed", range(4))
def test_equal_projections_onto_unit_gradients(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    scales = torch.tensor([[1.0], [10.0], [0.1]], dtype=torch.float64)  # very different norms
    J = torch.randn(3, 6, dtype=torch.float64, generator=generator) * scales
    agg = IMTLG()
    d = agg(J)
    projections = (J @ d) / J.norm(dim=1)
    torch.testing.assert_close(projections, projections.mean().expand(3))
    assert projections.mean() > 0
    assert agg.last_stats["weights"].sum().item() == pytest.approx(1.0)  # Σα = 1 as in the paper


def test_two_orthogonal_rows() -> None:
    # For orthogonal g1, g2: d = α g1 + (1-α) g2 with α||g1|| = (1-α)||g2||.
    J = torch.tensor([[3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(IMTLG()(J), torch.tensor([0.75, 0.75], dtype=torch.float64))
