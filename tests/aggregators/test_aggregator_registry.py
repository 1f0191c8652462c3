import pytest

from mtbert.aggregators import AGGREGATOR_NAMES, Aggregator, aggregator_options, make_aggregator

EXPECTED_NAMES = (
    "alignedmtl",
    "cagrad",
    "config",
    "dualproj",
    "fairgrad",
    "famo",
    "gradvac",
    "imtlg",
    "mgda",
    "nashmtl",
    "pcgrad",
    "sum",
    "swpcgrad",
    "uncertainty",
    "upgrad",
    "weighted",
)


def test_names_sorted_and_complete() -> None:
    assert AGGREGATOR_NAMES == EXPECTED_NAMES
    assert list(AGGREGATOR_NAMES) == sorted(AGGREGATOR_NAMES)


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_every_name_builds(name: str) -> None:
    options = {"weights": [1.0, 1.0, 1.0]} if name == "weighted" else {}
    assert isinstance(make_aggregator(name, **options), Aggregator)


def test_unknown_name_lists_all_valid_names() -> None:
    with pytest.raises(ValueError, match="'pcgard'") as info:
        make_aggregator("pcgard")
    for name in EXPECTED_NAMES:
        assert name in str(info.value)


def test_unknown_option_named_with_allowed_options() -> None:
    with pytest.raises(ValueError, match=r"\['bta'\].*'gradvac'.*beta, group, seed"):
        make_aggregator("gradvac", bta=0.1)
    with pytest.raises(ValueError, match=r"\['seed'\].*allowed options: none"):
        make_aggregator("sum", seed=1)


def test_missing_required_option() -> None:
    with pytest.raises(ValueError, match=r"requires option\(s\) \['weights'\]"):
        make_aggregator("weighted")


@pytest.mark.parametrize(
    ("name", "options", "option"),
    [
        ("gradvac", {"beta": 2.0}, "beta"),
        ("gradvac", {"group": "blocks"}, "group"),
        ("pcgrad", {"seed": -3}, "seed"),
        ("swpcgrad", {"seed": "a"}, "seed"),
        ("weighted", {"weights": [1.0, -2.0]}, "weights"),
        ("upgrad", {"reg_eps": -1.0}, "reg_eps"),
        ("alignedmtl", {"scale_mode": "max"}, "scale_mode"),
    ],
)
def test_invalid_option_values_name_the_option(name: str, options: dict, option: str) -> None:
    with pytest.raises(ValueError, match=f"`{option}`"):
        make_aggregator(name, **options)


def test_options_built_through_registry_are_applied() -> None:
    agg = make_aggregator("gradvac", beta=0.5, group="tensor", seed=3)
    assert (agg.beta, agg.group, agg.seed) == (0.5, "tensor", 3)
    assert aggregator_options("gradvac") == ("beta", "group", "seed")


def test_every_registered_class_is_exported_by_the_package() -> None:
    import mtbert.aggregators as package

    for name in AGGREGATOR_NAMES:
        cls = type(make_aggregator(name, **({"weights": [1.0, 1.0, 1.0]} if name == "weighted" else {})))
        assert cls.__name__ in package.__all__, f"{cls.__name__} ({name!r}) is registered but not in __all__"


def test_register_refuses_a_taken_name_and_a_non_aggregator() -> None:
    from mtbert.aggregators import Sum
    from mtbert.aggregators._registry import register

    class Other(Sum):
        pass

    with pytest.raises(ValueError, match=r"'pcgrad' is taken by PCGrad"):
        register("pcgrad")(Other)
    with pytest.raises(ValueError, match="lower-case identifier"):
        register("Bad-Name")(Other)
    with pytest.raises(ValueError, match="Aggregator subclass"):
        register("notone")(int)
    assert register("sum")(Sum) is Sum  # the same class again: a re-import, harmless
    assert AGGREGATOR_NAMES == EXPECTED_NAMES


def test_register_makes_a_new_method_buildable_by_its_name() -> None:
    from mtbert.aggregators import Sum
    from mtbert.aggregators._registry import _REGISTRY, register

    class Other(Sum):
        pass

    with pytest.raises(ValueError, match="lower-case identifier"):
        register("Other")(Other)  # an identifier, but not lower-case
    try:
        assert register("other_sum")(Other) is Other
        assert type(make_aggregator("other_sum")) is Other
    finally:
        _REGISTRY.pop("other_sum", None)


def test_statistic_docs_name_the_methods_of_each_meaning_only_where_they_differ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mtbert.aggregators import Sum, _registry
    from mtbert.aggregators._base import GramianWeightedAggregator, Stat

    def method(stats: dict[str, Stat]) -> type:
        return type("Method", (Sum,), {"stats": stats})

    one, two, same = Stat("task", "one"), Stat("task", "two"), Stat("scalar", "same")
    fake = {"b": method({"x": two, "y": same}), "a": method({"x": one, "y": same}), "c": method({"x": one})}
    monkeypatch.setattr(_registry, "_REGISTRY", fake)
    assert _registry.statistic_docs() == {"x": "one (a, c) / two (b)", "y": "same"}
    monkeypatch.undo()
    assert _registry.statistic_docs()["weights"] == GramianWeightedAggregator.stats["weights"].doc
