"""UPGrad and DualProj (Quinton & Rey 2024): the output never goes against a task; golden values against torchjd."""

import pytest
import torch
from _aggregation_asserts import conflicting
from torchjd.aggregation import DualProj as TorchJDDualProj
from torchjd.aggregation import UPGrad as TorchJDUPGrad

from mtbert.aggregators import make_aggregator

F64 = torch.float64


@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
@pytest.mark.parametrize("seed", range(5))
def test_output_has_a_non_negative_inner_product_with_every_task_gradient(name: str, seed: int) -> None:
    """The defining property (dual cone): no task's loss increases to first order. Exact up to the QP's
    regularisation, so with reg_eps tiny the products are >= 0 up to round-off."""
    J = conflicting(seed)
    assert (J @ J.T < 0).any()
    d = make_aggregator(name, reg_eps=1e-12, norm_eps=0.0)(J)
    assert (J @ d >= -1e-9 * J.norm(dim=1) * d.norm()).all(), (J @ d).tolist()
    assert d.norm() > 0


@pytest.mark.parametrize("name", ["upgrad", "dualproj"])
def test_without_conflict_the_output_is_the_mean(name: str) -> None:
    J = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]], dtype=F64)  # pairwise cosines 1/2
    torch.testing.assert_close(make_aggregator(name, reg_eps=1e-12)(J), J.mean(0), atol=1e-9, rtol=0)


@pytest.mark.parametrize(("name", "reference"), [("upgrad", TorchJDUPGrad), ("dualproj", TorchJDDualProj)])
@pytest.mark.parametrize("seed", range(3))
def test_golden_against_torchjd(name: str, reference: type, seed: int) -> None:
    J = conflicting(seed)
    torch.testing.assert_close(make_aggregator(name)(J), reference()(J), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("option", ["norm_eps", "reg_eps"])
def test_invalid_epsilon_names_the_option(option: str) -> None:
    with pytest.raises(ValueError, match=f"Option `{option}` must be a float >= 0. Found {option}=-1"):
        make_aggregator("upgrad", **{option: -1})
