"""Two CPU processes (gloo) train exactly what one process trains on the same global batches.

Each case trains K steps in one process and in two (``torch.multiprocessing.spawn``, a ``file://`` rendezvous), with
dropout off (masks differ per process); the parameters (and GradVac's targets) must agree to float tolerance, be
identical on both ranks, and only rank 0 may write checkpoints or call the epoch hook.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import tiny_config
from torch import nn

from mtbert.checkpoint import Checkpointer
from mtbert.distributed import Group, join, leave
from mtbert.model import build_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe
from mtbert.training import Trainer

STEPS = 4
# name: train.* changes. batch_size is per task and step, split between the ranks (every 2nd row each).
CASES = {
    "sum": {"grad": "sum", "batch_size": 4},
    "pcgrad": {"grad": "pcgrad", "batch_size": 3},  # uneven shards: 2 rows and 1 row
    # SST has 1 row per step: rank 1 never has an SST example; its count must not dilute SST's gradient
    "swpcgrad": {"grad": "swpcgrad", "batch_size": 1, "task_ratio": {"sst": 1, "para": 3, "sts": 2}},
    "gradvac": {"grad": "gradvac", "batch_size": 4, "grad_options": {"beta": 0.5}},
    # Loss-weighting with state: the weights come from the global batch's losses (uneven shards), heads weighted too
    "famo": {"grad": "famo", "batch_size": 3, "grad_options": {"lr": 0.5}},
    "nashmtl": {"grad": "nashmtl", "batch_size": 4},
    # One task per step (sst, sst, para, sts): the other heads get no gradient on any rank, so the optimizer must skip
    # them as one process does (given zero gradients, AdamW would move them by momentum and weight decay)
    "sequential": {"grad": "sum", "batch_size": 4, "sampling": "sequential"},
}


class CountingCheckpointer(Checkpointer):
    """In memory; counts the writes."""

    def __init__(self) -> None:
        super().__init__(None, "test")
        self.writes = 0

    def save(self, payload: dict) -> None:
        self.writes += 1
        super().save(payload)

    def save_best(self, weights: dict) -> None:
        self.writes += 1
        super().save_best(weights)


def make_trainer(prepared: Path, model_dir: Path, group: Group, **train) -> Trainer:
    cfg = tiny_config(
        prepared,
        model_dir,
        model={"dropout": 0.0},
        train={"epochs": 1, "steps_per_epoch": STEPS, "checkpoint_every": 2, "grad_options": {}, **train},
    )
    recipe = Recipe.pretrain(cfg)
    data = load_training_data(prepared, cfg.task_specs(recipe.tasks), cfg.model.max_length)
    model = build_model(cfg.model, cfg.task_specs(), seed=7)
    for module in model.modules():  # the encoder's dropout too: masks would differ between processes
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    return Trainer(model, recipe, data, group)


def train_case(prepared: Path, model_dir: Path, group: Group, case: str) -> dict:
    trainer = make_trainer(prepared, model_dir, group, **CASES[case])
    checkpoints, epochs = CountingCheckpointer(), []
    trainer.fit(checkpoints, on_epoch=lambda epoch, metrics: epochs.append(metrics))
    return {
        "params": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "aggregator": trainer.aggregator.state_dict(),
        "writes": checkpoints.writes,
        "epochs": epochs,
    }


def worker(rank: int, init: str, prepared: Path, model_dir: Path, out: Path) -> None:
    torch.set_num_threads(1)
    group = join(torch.device("cpu"), rank, 2, rank, init_method=init)
    try:
        for case in CASES:
            torch.save(train_case(prepared, model_dir, group, case), out / f"{case}-{rank}.pt")
    finally:
        leave()


@pytest.fixture(scope="module")
def two_processes(prepared, tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ranks")
    init = f"file://{out / 'rendezvous'}"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(worker, args=(init, prepared, tiny_model_dir, out), nprocs=2, join=True)
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_what_one_process_trains(prepared, tiny_model_dir, two_processes, case):
    one = train_case(prepared, tiny_model_dir, Group(), case)
    ranks = [torch.load(two_processes / f"{case}-{rank}.pt", weights_only=False) for rank in (0, 1)]
    for name, value in one["params"].items():
        torch.testing.assert_close(ranks[0]["params"][name], value, rtol=1e-4, atol=1e-5, msg=name)
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name]), name  # the same step everywhere
    moved = sum((one["params"][k] - v).abs().sum() for k, v in build_state(prepared, tiny_model_dir, case).items())
    assert moved > 0  # K steps trained at all (else equality would prove nothing)
    for key, value in one["aggregator"].items():  # GradVac's EMA targets, PCGrad's generator
        torch.testing.assert_close(ranks[0]["aggregator"][key], value, rtol=1e-4, atol=1e-6)
        assert torch.equal(ranks[0]["aggregator"][key], ranks[1]["aggregator"][key]), key
    assert ranks[0]["writes"] > 0 and ranks[1]["writes"] == 0
    assert len(ranks[0]["epochs"]) == 1 and ranks[1]["epochs"] == []
    metrics, reference = ranks[0]["epochs"][0], one["epochs"][0]
    assert metrics.keys() == reference.keys()
    for key in ("sst_acc", "para_acc", "sts_pearson", "loss_sst", "loss_para"):
        assert metrics[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-5), key


def test_gradvac_targets_were_updated(two_processes):
    state = torch.load(two_processes / "gradvac-1.pt", weights_only=False)["aggregator"]
    assert any(value.abs().sum() > 0 for value in state.values() if value.is_floating_point())


def build_state(prepared: Path, model_dir: Path, case: str) -> dict:
    """The parameters before training."""
    trainer = make_trainer(prepared, model_dir, Group(), **CASES[case])
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def overflow_worker(rank: int, init: str, prepared: Path, model_dir: Path, out: Path) -> None:
    """fp16's loss scaling on the CPU: rank 1 alone sees a NaN in the first step; both ranks must skip it."""
    torch.set_num_threads(1)
    group = join(torch.device("cpu"), rank, 2, rank, init_method=init)
    try:
        trainer = make_trainer(prepared, model_dir, group, grad="pcgrad")
        trainer.scaler.enabled, trainer.scaler.scale = True, 2.0**16
        start = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        plan = trainer.sampler.epoch(0)
        task_loss = trainer.model.task_loss
        if rank == 1:
            trainer.model.task_loss = lambda task, batch: task_loss(task, batch) * float("nan")
        first = trainer.step(plan[0], 0)
        after_first = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        scale_after_first = trainer.scaler.scale
        trainer.model.task_loss = task_loss
        second = trainer.step(plan[1], 1)
        torch.save(
            {
                "unchanged": all(torch.equal(start[k], after_first[k]) for k in start),
                "first": first,
                "second": second,
                "scales": (scale_after_first, trainer.scaler.scale),
                "skipped": trainer.scaler.skipped,
                "params": dict(trainer.model.state_dict()),
            },
            out / f"overflow-{rank}.pt",
        )
    finally:
        leave()


def test_an_inf_on_one_rank_skips_the_step_on_every_rank(prepared, tiny_model_dir, tmp_path):
    mp.spawn(
        overflow_worker, args=(f"file://{tmp_path / 'rdzv'}", prepared, tiny_model_dir, tmp_path), nprocs=2, join=True
    )
    ranks = [torch.load(tmp_path / f"overflow-{rank}.pt", weights_only=False) for rank in (0, 1)]
    for result in ranks:
        assert result["unchanged"] and result["first"] == {} and result["skipped"] == 1
        assert result["scales"] == (2.0**15, 2.0**15)  # halved once, not grown after one good step
        assert set(result["second"]) == {"loss_sst", "loss_para", "loss_sts"}
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), name
