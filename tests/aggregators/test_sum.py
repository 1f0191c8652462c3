import pytest
import torch

from mtbert.aggregators import Sum, Weighted

J = torch.tensor([[1.0, 2.0, -1.0], [-2.0, 1.0, 0.5], [0.0, 3.0, 1.0]], dtype=torch.float64)


def test_sum_is_sum_of_rows() -> None:
    torch.testing.assert_close(Sum()(J), J.sum(dim=0))


def test_weighted_is_weighted_sum_of_rows() -> None:
    out = Weighted(weights=[2.0, 0.0, 0.5])(J)
    torch.testing.assert_close(out, 2.0 * J[0] + 0.5 * J[2])


def test_weighted_length_checked_before_training_and_at_call_time() -> None:
    agg = Weighted(weights=[1.0, 2.0])
    for check in (lambda: agg.check_tasks(3), lambda: agg.bind([("w", 4)], 3), lambda: agg(J)):
        with pytest.raises(ValueError, match=r"`weights` has 2 entries for 3 tasks"):
            check()
    agg.check_tasks(2)


@pytest.mark.parametrize("weights", [[1.0, -0.1, 1.0], [], [float("nan")], "abc", 3.0])
def test_weighted_rejects_bad_weights(weights: object) -> None:
    with pytest.raises(ValueError, match="`weights`"):
        Weighted(weights=weights)  # type: ignore[arg-type]


def test_weighted_refusals_word_for_word() -> None:
    with pytest.raises(ValueError) as info:
        Weighted(weights=[1.0, -0.1])
    assert str(info.value) == (
        "Option `weights` must be a non-empty sequence of finite non-negative floats. Found weights=[1.0, -0.1]."
    )
    with pytest.raises(ValueError) as info:
        Weighted(weights=[1.0, 2.0]).check_tasks(3)
    assert str(info.value) == (
        "Option `weights` has 2 entries for 3 tasks: give exactly one weight per task, in the order of `tasks`."
    )


def test_weighted_shows_its_weights() -> None:
    assert repr(Weighted(weights=[1.0, 2.5])) == "Weighted(weights=[1.0, 2.5])"
