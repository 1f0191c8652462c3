"""GradVac (Wang et al., ICLR 2021, Algorithm 1) properties."""

import math
import re

import pytest
import torch
from torchjd.aggregation import GradVac as TorchJDGradVac

from mtbert.aggregators import GradVac, PCGrad
from mtbert.aggregators._base import NonFiniteJacobian, draw_orders


def reference_gradvac(
    J: torch.Tensor, targets: torch.Tensor, orders: list[list[int]], beta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Direct transcription of Algorithm 1 on the gradient vectors for one group.

    Returns the output (sum of the vaccinated rows) and the updated targets.
    """
    new_targets = targets.clone()
    out = torch.zeros_like(J[0])
    for i in range(J.shape[0]):
        g = J[i].clone()
        for j in orders[i]:
            phi = float(g @ J[j] / (g.norm() * J[j].norm()))
            t = float(targets[i, j])
            if phi < t:
                coef = g.norm() * (t * math.sqrt(1 - phi**2) - phi * math.sqrt(1 - t**2))
                g = g + coef / (J[j].norm() * math.sqrt(1 - t**2)) * J[j]
            new_targets[i, j] = (1 - beta) * t + beta * phi
        out += g
    return out, new_targets


def random_J(seed: int, n_tasks: int = 3, n_columns: int = 6) -> torch.Tensor:
    return torch.randn(n_tasks, n_columns, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


LAYOUT = [
    ("encoder.embeddings.word_embeddings.weight", 3),
    ("encoder.embeddings.LayerNorm.weight", 1),
    ("encoder.encoder.layer.0.attention.self.query.weight", 2),
    ("encoder.encoder.layer.0.output.dense.bias", 1),
    ("encoder.encoder.layer.1.attention.self.query.weight", 2),
    ("encoder.pooler.dense.bias", 1),
]
N_COLUMNS = sum(n for _, n in LAYOUT)


def test_first_step_with_zero_targets_equals_pcgrad_two_conflicting_tasks() -> None:
    J = torch.tensor([[1.0, 0.3, -0.2], [-0.7, 1.0, 0.4]], dtype=torch.float64)
    assert J[0] @ J[1] < 0
    agg = GradVac(beta=0.5)
    torch.testing.assert_close(agg(J), PCGrad()(J))
    assert agg.last_stats["corrections"].tolist() == [[0, 1], [1, 0]]


def test_first_step_equals_pcgrad_with_same_seed_three_tasks() -> None:
    for seed in range(3):
        J = random_J(seed)
        torch.testing.assert_close(GradVac(seed=seed)(J), PCGrad(seed=seed)(J))


def test_equals_transcription_of_algorithm_1_over_several_steps() -> None:
    beta = 0.3
    agg = GradVac(beta=beta, seed=5)
    generator = torch.Generator().manual_seed(5)
    targets = torch.zeros(3, 3, dtype=torch.float64)
    for step in range(5):
        J = random_J(100 + step)
        orders = draw_orders(3, generator)
        expected, targets = reference_gradvac(J, targets, orders, beta)
        torch.testing.assert_close(agg(J), expected)
        assert agg.targets is not None
        torch.testing.assert_close(agg.targets[0], targets)


def test_matches_torchjd_gradvac_for_two_tasks() -> None:
    # For T=2 there is no order; torchjd only adds eps=1e-8 to denominators.
    ours, theirs = GradVac(beta=0.5), TorchJDGradVac(beta=0.5)
    for step in range(4):
        J = random_J(step, n_tasks=2, n_columns=4)
        torch.testing.assert_close(ours(J), theirs(J), rtol=1e-6, atol=1e-6)


def test_target_updated_every_step_and_can_rise() -> None:
    beta = 0.25
    agg = GradVac(beta=beta)
    conflicting = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    agg(conflicting)
    assert agg.targets is not None
    phi_01 = -1 / math.sqrt(2)
    assert agg.targets[0, 0, 1].item() == pytest.approx(beta * phi_01)
    assert agg.last_stats["corrections"].sum() == 2

    # Aligned gradients: cos = 0.8 > target, so no correction, but the target still moves (up).
    aligned = torch.tensor([[1.0, 0.0], [0.8, 0.6]], dtype=torch.float64)
    before = agg.targets[0, 0, 1].item()
    out = agg(aligned)
    assert agg.last_stats["corrections"].sum() == 0
    torch.testing.assert_close(out, aligned.sum(dim=0))
    after = agg.targets[0, 0, 1].item()
    assert after > before
    assert after == pytest.approx((1 - beta) * before + beta * 0.8)


def test_positive_target_corrects_non_conflicting_pair_towards_target() -> None:
    # Once the target is above the observed cosine, GradVac corrects even non-conflicting pairs
    # (unlike PCGrad), and the corrected g_i^PC has exactly the target cosine with g_j.
    agg = GradVac(beta=1.0)
    agg(torch.tensor([[1.0, 0.0], [0.8, 0.6]], dtype=torch.float64))  # targets := 0.8
    J = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)  # cos = 0 < 0.8
    agg(J)
    weights = agg.last_stats["group_weights"][0]
    assert agg.last_stats["corrections"].tolist() == [[0, 1], [1, 0]]
    # Row 0 after correction: g0 + a g1 with a = w1 - 1 (row 1 contributes 1 to w1 plus its own a' g0).
    g0_pc = J[0] + (weights[1] - 1) * J[1]
    cos = (g0_pc @ J[1]) / (g0_pc.norm() * J[1].norm())
    assert cos.item() == pytest.approx(0.8)


def test_zero_gradient_pair_is_skipped() -> None:
    agg = GradVac(beta=0.5)
    J = torch.tensor([[1.0, 0.0], [0.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    agg(J)
    assert agg.targets is not None
    assert agg.targets[0, :, 1].abs().sum() == 0 and agg.targets[0, 1, :].abs().sum() == 0
    assert agg.targets[0, 0, 2] != 0


def test_state_dict_round_trip_bound_layer_grouping() -> None:
    original = GradVac(beta=0.2, group="layer", seed=4)
    original.bind(LAYOUT, 3)
    for step in range(3):
        original(random_J(step, n_columns=N_COLUMNS))
    resumed = GradVac(beta=0.2, group="layer", seed=0)
    resumed.bind(LAYOUT, 3)
    resumed.load_state_dict(original.state_dict())
    for step in range(3, 6):
        J = random_J(step, n_columns=N_COLUMNS)
        torch.testing.assert_close(resumed(J), original(J))
        assert resumed.targets is not None and original.targets is not None
        torch.testing.assert_close(resumed.targets, original.targets)


def test_state_dict_round_trip_unbound_all_grouping() -> None:
    original = GradVac(beta=0.2, seed=1)
    for step in range(2):
        original(random_J(step))
    state = original.state_dict()
    assert state["targets"].shape == (1, 3, 3)
    resumed = GradVac(beta=0.2, seed=1)
    resumed.load_state_dict(state)
    J = random_J(9)
    torch.testing.assert_close(resumed(J), original(J))


def test_bind_allocates_fixed_shape_state_and_load_checks_shape() -> None:
    agg = GradVac(group="tensor")
    agg.bind(LAYOUT, 3)
    assert agg.targets is not None and agg.targets.shape == (len(LAYOUT), 3, 3)
    other = GradVac(group="layer")
    other.bind(LAYOUT, 3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        other.load_state_dict(agg.state_dict())


@pytest.mark.parametrize(("group", "n_groups"), [("all", 1), ("tensor", 6), ("layer", 4)])
def test_grouping_sizes(group: str, n_groups: int) -> None:
    agg = GradVac(group=group)
    agg.bind(LAYOUT, 3)
    assert len(agg.group_names) == n_groups
    assert agg.targets is not None and agg.targets.shape[0] == n_groups
    agg(random_J(0, n_columns=N_COLUMNS))
    assert agg.last_stats["group_weights"].shape == (n_groups, 3)


def test_grouped_output_is_per_group_gradvac_and_gramian_is_total() -> None:
    agg = GradVac(beta=0.5, group="layer", seed=2)
    agg.bind(LAYOUT, 3)
    assert agg.group_names == ["embeddings", "layer.0", "layer.1", "other"]
    columns = {
        "embeddings": slice(0, 4),
        "layer.0": slice(4, 7),
        "layer.1": slice(7, 9),
        "other": slice(9, 10),
    }
    generator = torch.Generator().manual_seed(2)
    targets = {name: torch.zeros(3, 3, dtype=torch.float64) for name in columns}
    for step in range(2):
        J = random_J(step, n_columns=N_COLUMNS)
        out = agg(J)
        expected = torch.empty_like(out)
        for name in agg.group_names:  # groups draw their orders in group order
            block = J[:, columns[name]]
            expected[columns[name]], targets[name] = reference_gradvac(
                block, targets[name], draw_orders(3, generator), 0.5
            )
        torch.testing.assert_close(out, expected)
        torch.testing.assert_close(agg.last_gramian, J @ J.T)
        assert agg.last_stats["corrections"].max() <= len(columns)


def test_reset_zeroes_targets_and_reseeds() -> None:
    agg = GradVac(beta=0.5, seed=3)
    J = random_J(0)
    first = agg(J)
    agg(random_J(1))
    agg.reset()
    torch.testing.assert_close(agg(J), first)


def test_grouping_needs_bind_and_matching_columns() -> None:
    needs_bind = "GradVac(group='layer') needs the parameter layout: call bind(layout, n_tasks) before the first step."
    with pytest.raises(RuntimeError, match=f"^{re.escape(needs_bind)}$"):
        GradVac(group="layer")(random_J(0))
    agg = GradVac(group="tensor")
    agg.bind(LAYOUT, 3)
    with pytest.raises(ValueError, match="columns"):
        agg(random_J(0, n_columns=N_COLUMNS + 1))
    rows = "J has 2 rows but GradVac's targets are for 3 tasks (call bind() with the right n_tasks, or reset())."
    with pytest.raises(ValueError, match=f"^{re.escape(rows)}$"):
        agg(random_J(0, n_tasks=2, n_columns=N_COLUMNS))


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"beta": 0.0}, "beta"),
        ({"beta": 1.5}, "beta"),
        ({"beta": "x"}, "beta"),
        ({"group": "block"}, "group"),
    ],
)
def test_invalid_options(options: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        GradVac(**options)


def test_non_contiguous_group_columns() -> None:
    layout = [("a.layer.0.w", 2), ("pooler.w", 1), ("a.layer.0.b", 2)]
    agg = GradVac(beta=0.5, group="layer", seed=6)
    agg.bind(layout, 3)
    J = random_J(3, n_columns=5)
    out = agg(J)
    generator = torch.Generator().manual_seed(6)
    zeros = torch.zeros(3, 3, dtype=torch.float64)
    layer0 = [0, 1, 3, 4]
    expected = torch.empty_like(out)
    expected[layer0], _ = reference_gradvac(J[:, layer0], zeros, draw_orders(3, generator), 0.5)
    expected[[2]], _ = reference_gradvac(J[:, [2]], zeros, draw_orders(3, generator), 0.5)
    torch.testing.assert_close(out, expected)


def test_reset_of_an_unbound_instance_lets_it_take_another_number_of_tasks() -> None:
    agg = GradVac(beta=0.5)
    agg(random_J(0, n_tasks=3))
    with pytest.raises(ValueError, match="targets are for 3 tasks"):
        agg(random_J(1, n_tasks=2))
    agg.reset()
    torch.testing.assert_close(agg(random_J(1, n_tasks=2)), GradVac(beta=0.5)(random_J(1, n_tasks=2)))


def test_reset_of_a_bound_instance_zeroes_its_targets_in_place() -> None:
    agg = GradVac(beta=0.5, group="tensor")
    agg.bind(LAYOUT, 3)
    agg(random_J(0, n_columns=N_COLUMNS))
    agg.reset()
    assert agg.targets is not None and agg.targets.shape == (len(LAYOUT), 3, 3)
    assert not agg.targets.any()


def test_targets_are_kept_and_saved_in_float64() -> None:
    for agg in (GradVac(), GradVac(group="tensor")):
        if agg.group == "tensor":
            agg.bind(LAYOUT, 3)
        agg(random_J(0, n_columns=N_COLUMNS).float())
        assert agg.state_dict()["targets"].dtype == torch.float64


def test_an_orthogonal_pair_at_its_target_is_not_corrected() -> None:
    """φ = 0 = φ̂ (targets start at 0): only a cosine *below* the target is corrected (the paper's ``φ < φ̂``)."""
    agg = GradVac(beta=0.5)
    J = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(agg(J), torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert agg.last_stats["corrections"].tolist() == [[0, 0], [0, 0]]


def test_unbound_all_grouping_has_one_group_named_all_from_its_first_step() -> None:
    """Unbound, ``group="all"`` has no groups until its first step, then the same single group as a bound one."""
    agg = GradVac()
    assert agg.group_names == [] and agg.targets is None
    agg(random_J(0))
    bound = GradVac()
    bound.bind(LAYOUT, 3)
    assert agg.group_names == bound.group_names == ["all"]


def test_corrections_and_targets_mean_are_summed_and_averaged_over_groups() -> None:
    """Three groups of two columns, zero targets (the first step is PCGrad in each group), computed by hand: groups
    ``a`` and ``c`` conflict (cos -1/√2 and -2/√5), group ``b`` does not (cos 0.8)."""
    beta = 0.5
    agg = GradVac(beta=beta, group="tensor")
    agg.bind([("a", 2), ("b", 2), ("c", 2)], 2)
    J = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0, 1.0], [-1.0, 1.0, 0.8, 0.6, 1.0, -2.0]], dtype=torch.float64)
    out = agg(J)
    # a: g0 + 0.5 g1, g1 + g0; b: unchanged; c: g0 + 0.4 g1, g1 + 2 g0.
    torch.testing.assert_close(out, torch.tensor([0.5, 1.5, 1.8, 0.6, 1.4, 0.2], dtype=torch.float64))
    torch.testing.assert_close(
        agg.last_stats["group_weights"], torch.tensor([[2.0, 1.5], [1.0, 1.0], [3.0, 1.4]], dtype=torch.float64)
    )
    corrections = agg.last_stats["corrections"]
    assert corrections.dtype == torch.int64 and corrections.tolist() == [[0, 2], [2, 0]]
    cosines = torch.tensor([-1 / math.sqrt(2), 0.8, -2 / math.sqrt(5)], dtype=torch.float64)
    expected_targets = beta * cosines[:, None, None] * (1 - torch.eye(2, dtype=torch.float64))
    assert agg.targets is not None
    torch.testing.assert_close(agg.targets, expected_targets)
    torch.testing.assert_close(agg.last_stats["targets_mean"], expected_targets.mean(dim=0))


@pytest.mark.parametrize("group", ["all", "layer"])
def test_a_non_finite_row_is_named(group: str) -> None:
    agg = GradVac(group=group)
    agg.bind(LAYOUT, 3)
    J = random_J(0, n_columns=N_COLUMNS)
    J[2, N_COLUMNS - 1] = float("nan")  # the pooler's column: the last group of "layer"
    with pytest.raises(NonFiniteJacobian) as info:
        agg(J)
    assert info.value.rows == [2]


def test_parameters_of_size_zero_give_an_empty_direction() -> None:
    """A layout whose tensors are all empty: ``J`` has no columns, the direction is empty and nothing is corrected."""
    agg = GradVac(beta=0.5, group="tensor")
    agg.bind([("a.weight", 0)], 2)
    out = agg(torch.zeros(2, 0, dtype=torch.float64))
    assert out.shape == (0,)
    assert agg.last_stats["corrections"].tolist() == [[0, 0], [0, 0]]
    assert agg.targets is not None and not agg.targets.any()


@pytest.mark.parametrize(
    ("layout", "k"), [([("a.layer.0.w", 0), ("pooler.w", 3)], 1), ([("pooler.w", 3), ("a.layer.0.w", 0)], 0)]
)
def test_a_group_of_empty_tensors_beside_one_group_covering_every_column(layout: list, k: int) -> None:
    """A group whose tensors are all empty has no columns (a zero Gramian, weights 1, targets 0) beside a group that
    covers every column: that group is GradVac itself (it crashed with an IndexError before 2026-12-07)."""
    agg = GradVac(beta=0.5, group="layer", seed=1)
    agg.bind(layout, 3)
    J = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]], dtype=torch.float64)
    out = agg(J)
    assert agg.last_stats["corrections"].sum() > 0
    generator = torch.Generator().manual_seed(1)
    orders = [draw_orders(3, generator) for _ in range(2)]
    expected, targets = reference_gradvac(J, torch.zeros(3, 3, dtype=torch.float64), orders[k], 0.5)
    torch.testing.assert_close(out, expected)
    assert agg.targets is not None
    torch.testing.assert_close(agg.targets[k], targets)
    assert agg.last_stats["group_weights"][1 - k].tolist() == [1.0, 1.0, 1.0] and not agg.targets[1 - k].any()
