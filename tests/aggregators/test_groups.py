import pytest

from mtbert.aggregators import build_groups, group_key

LAYOUT = [
    ("encoder.embeddings.word_embeddings.weight", 10),
    ("encoder.embeddings.position_embeddings.weight", 4),
    ("encoder.embeddings.LayerNorm.bias", 2),
    ("encoder.encoder.layer.0.attention.self.query.weight", 3),
    ("encoder.encoder.layer.0.attention.self.query.bias", 1),
    ("encoder.encoder.layer.1.output.dense.weight", 5),
    ("encoder.encoder.layer.10.output.LayerNorm.weight", 2),
    ("encoder.pooler.dense.weight", 3),
    ("encoder.pooler.dense.bias", 1),
]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("encoder.encoder.layer.3.attention.self.query.weight", "layer.3"),
        ("encoder.encoder.layer.11.output.dense.bias", "layer.11"),
        ("encoder.embeddings.word_embeddings.weight", "embeddings"),
        ("encoder.pooler.dense.bias", "other"),
        ("encoder.encoder.layerX.1.weight", "other"),
    ],
)
def test_layer_keys(name: str, key: str) -> None:
    assert group_key(name, "layer") == key


def test_layer_grouping() -> None:
    names, segments = build_groups(LAYOUT, "layer")
    assert names == ["embeddings", "layer.0", "layer.1", "layer.10", "other"]
    assert segments == [(0, 0, 16), (1, 16, 20), (2, 20, 25), (3, 25, 27), (4, 27, 31)]


def test_tensor_grouping_one_group_per_tensor() -> None:
    names, segments = build_groups(LAYOUT, "tensor")
    assert names == [name for name, _ in LAYOUT]
    assert len(segments) == len(LAYOUT)
    assert segments[-1] == (8, 30, 31)


def test_all_grouping_single_segment() -> None:
    assert build_groups(LAYOUT, "all") == (["all"], [(0, 0, 31)])


def test_non_contiguous_group_keeps_separate_segments() -> None:
    layout = [("a.layer.0.w", 2), ("pooler.w", 1), ("a.layer.0.b", 2)]
    names, segments = build_groups(layout, "layer")
    assert names == ["layer.0", "other"]
    assert segments == [(0, 0, 2), (1, 2, 3), (0, 3, 5)]


def test_unknown_grouping() -> None:
    with pytest.raises(ValueError, match="`group`"):
        group_key("x", "block")


def test_a_zero_size_tensor_adds_no_segment() -> None:
    layout = [("a.weight", 3), ("b.weight", 0), ("c.weight", 2)]
    names, segments = build_groups(layout, "tensor")
    assert names == ["a.weight", "b.weight", "c.weight"]
    assert segments == [(0, 0, 3), (2, 3, 5)]
