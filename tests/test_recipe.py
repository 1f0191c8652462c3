"""Tests for mtbert.recipe: params -> what each training run does (the only place the two stages differ)."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import tiny_config

from mtbert.errors import ConfigError
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe, all_recipes


def test_single_task_pretraining_keeps_only_that_task(prepared, tiny_model_dir):
    # Multipliers and loss weights of the tasks left out must not reach the sampler (a bug the study found).
    cfg = tiny_config(
        prepared,
        tiny_model_dir,
        train={
            "grad": "sum",  # a surgery method needs several tasks per step
            "task_ratio": {"sst": 1, "para": 0, "sts": 0},
            "multipliers": {"sst": 1, "para": 2, "sts": 3},
            "loss_weights": {"para": 0.5},
            "steps_per_epoch": 0,
        },
    )
    recipe = Recipe.pretrain(cfg)
    assert recipe.tasks == ("sst",) and recipe.batch_sizes == {"sst": 4}
    assert recipe.multipliers == {"sst": 1} and recipe.loss_weights == {}
    data = load_training_data(prepared, cfg.task_specs(recipe.tasks), 32)
    assert {task for step in recipe.make_sampler(data.sizes()).epoch(0) for task, _ in step} == {"sst"}


def test_pretraining_follows_ratio_sampling_multipliers_grad_and_weights(prepared, tiny_model_dir):
    multipliers = {"sst": 3, "para": 1, "sts": 4}
    cfg = tiny_config(
        prepared,
        tiny_model_dir,
        train={
            "task_ratio": {"sst": 2, "para": 1, "sts": 1},
            "sampling": "undersample",
            "steps_per_epoch": 0,
            "multipliers": multipliers,
            "loss_weights": {"sst": 0.5},
            "grad": "gradvac",
            "grad_options": {"beta": 0.5},
            "seed": 7,
        },
        predict={"batch_size": 5},
    )
    recipe = Recipe.pretrain(cfg)
    assert recipe.batch_sizes == {"sst": 8, "para": 4, "sts": 4}
    assert (recipe.loss_weight("sst"), recipe.loss_weight("para")) == (0.5, 1.0)
    assert type(recipe.make_aggregator()).__name__ == "GradVac" and recipe.make_aggregator().beta == 0.5
    assert (recipe.seed, recipe.eval_batch_size) == (7, 5)
    sizes = load_training_data(prepared, cfg.task_specs(), 32).sizes()
    sampler = recipe.make_sampler(sizes)
    assert sampler.steps == min(sizes[t] * multipliers[t] // recipe.batch_sizes[t] for t in sizes)


def test_finetuning_is_one_task_with_sum_its_own_steps_and_the_seed(prepared, tiny_model_dir):
    cfg = tiny_config(
        prepared,
        tiny_model_dir,
        train={"grad": "pcgrad", "sampling": "oversample"},
        finetune={
            "batch_size": 6,
            "steps_per_epoch": 9,
            "task_steps": {"para": 2},
            "seeds": [3, 4],
            "lr": 1e-4,
            "task_lr": {"sst": 2e-5},
        },
        ensemble={"members": ["multitask", "finetune-4"]},
    )
    para, sst = Recipe.finetune(cfg, "para", 4), Recipe.finetune(cfg, "sst", 3)
    assert (para.tasks, para.batch_sizes, para.grad, para.sampling) == (("para",), {"para": 6}, "sum", "oversample")
    assert (para.steps_per_epoch, para.seed, sst.steps_per_epoch, sst.seed) == (2, 4, 9, 3)
    assert para.loop == cfg.finetune  # a task without its own rate: the section's loop settings
    assert (para.loop.lr, sst.loop.lr) == (1e-4, 2e-5)
    assert dataclasses.replace(sst.loop, lr=1e-4) == cfg.finetune  # nothing else changes
    assert len(all_recipes(cfg)) == 1 + 3 * 2


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"grad": "bogus"}, "train.grad: Unknown aggregator 'bogus'"),
        ({"grad": "gradvac", "grad_options": {"speed": 1}}, "train.grad_options: "),
        ({"grad": "pcgrad", "sampling": "proportional"}, "train.grad: 'pcgrad' combines"),
        ({"grad": "pcgrad", "task_ratio": {"sst": 1, "para": 0, "sts": 0}}, "train.grad: 'pcgrad' combines"),
        ({"task_ratio": {"sst": 0, "para": 0, "sts": 0}}, "train.task_ratio: every task has ratio 0"),
        ({"loss_weights": {"sst": 0.0, "para": 0.0, "sts": 0.0}}, "train.loss_weights: every training task"),
        ({"loss_weights": {"sst": -1.0}}, "train.loss_weights.sst: expected a finite number >= 0"),
        ({"multipliers": {"sst": 2}, "steps_per_epoch": 5}, "train.multipliers: with sampling 'oversample'"),
        ({"grad": "sum", "sampling": "annealed", "anneal_to": 1.5}, "train.anneal_to"),
        ({"sampling": "sometimes"}, "train.sampling"),
        ({"multipliers": {"sst": 0}, "steps_per_epoch": 0}, "train.multipliers"),
    ],
)
def test_a_recipe_that_can_never_train_names_the_params_key(prepared, tiny_model_dir, train, message):
    cfg = tiny_config(prepared, tiny_model_dir, train=train)
    with pytest.raises(ConfigError) as info:
        Recipe.pretrain(cfg)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_linear_methods_take_one_task_steps(prepared, tiny_model_dir):
    for grad, options in (("sum", {}), ("weighted", {"weights": [1.0, 2.0, 3.0]})):
        cfg = tiny_config(
            prepared, tiny_model_dir, train={"grad": grad, "grad_options": options, "sampling": "sequential"}
        )
        assert Recipe.pretrain(cfg).sampling == "sequential"


@pytest.mark.parametrize("grad", ["pcgrad", "swpcgrad", "gradvac"])
def test_the_runs_seed_seeds_every_method_that_draws(prepared, tiny_model_dir, grad):
    """train.seed reaches the method's own generator (its projection orders), unless grad_options sets one; the
    orders of two seeds differ, so the method study's seeds vary them."""
    recipe = Recipe.pretrain(tiny_config(prepared, tiny_model_dir, train={"grad": grad, "seed": 7}))
    assert recipe.make_aggregator().seed == 7
    pinned = Recipe.pretrain(
        tiny_config(prepared, tiny_model_dir, train={"grad": grad, "seed": 7, "grad_options": {"seed": 3}})
    )
    assert pinned.make_aggregator().seed == 3
    draws = [
        Recipe.pretrain(tiny_config(prepared, tiny_model_dir, train={"grad": grad, "seed": s}))
        .make_aggregator()
        ._draw_orders(5, 4)
        for s in (0, 1)
    ]
    assert draws[0] != draws[1]


def test_methods_that_do_not_draw_take_no_seed(prepared, tiny_model_dir):
    recipe = Recipe.pretrain(tiny_config(prepared, tiny_model_dir, train={"grad": "mgda", "seed": 7}))
    assert type(recipe.make_aggregator()).__name__ == "MGDA"  # built: no seed option forced on it
