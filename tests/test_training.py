"""The training loop: per-task gradients, aggregation, heads, determinism, resume, numerics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from mtbert.aggregators import AGGREGATOR_NAMES, make_aggregator
from mtbert.checkpoint import Checkpointer
from mtbert.config import LoopConfig
from mtbert.data.encoded import collate
from mtbert.data.prepare import load_prepared, load_special, prepare
from mtbert.errors import TrainingError
from mtbert.model import MultiTaskModel
from mtbert.sampling import make_sampler
from mtbert.tasks import TASKS, get_tasks
from mtbert.training import TaskData, Trainer, make_schedule

LOOP = LoopConfig(epochs=2, steps_per_epoch=3, batch_size=4, checkpoint_every=2, lr=1e-3, seed=0)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_raw_dir, tiny_model_dir) -> Path:
    folder = tmp_path_factory.mktemp("prepared")
    prepare(list(TASKS.values()), tiny_raw_dir, folder, AutoTokenizer.from_pretrained(tiny_model_dir))
    return folder


def make_trainer(
    prepared: Path,
    tiny_model_dir: Path,
    grad: str = "sum",
    loop: LoopConfig = LOOP,
    *,
    mode: str | None = None,
    loss_weights: dict[str, float] | None = None,
    pals: int = 0,
    **options,
) -> Trainer:
    """A trainer on the tiny data; ``mode`` picks a sampling mode (default: the trainer's own round-robin)."""
    torch.manual_seed(123)
    tasks = get_tasks(["sst", "para", "sts"])
    encoder = AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False)
    model = MultiTaskModel(encoder, tasks, "mean", 0.1, pals=pals, pal_heads=2)
    data = [
        TaskData(t, load_prepared(prepared, t.name, "train"), load_prepared(prepared, t.name, "dev")) for t in tasks
    ]
    sampler = None
    if mode is not None:
        sizes = {d.spec.name: len(d.train) for d in data}
        sampler = make_sampler(mode, sizes, dict.fromkeys(sizes, loop.batch_size), loop.steps_per_epoch, loop.seed)
    aggregator = make_aggregator(grad, **options)
    special, cpu = load_special(prepared), torch.device("cpu")
    return Trainer(model, data, aggregator, loop, special, 32, cpu, sampler, loss_weights)


def _task_grad(trainer: Trainer, task: str, rows: np.ndarray) -> list[torch.Tensor]:
    spec = trainer.data[task].spec
    batch = collate(trainer.data[task].train, rows, spec.encoding, trainer.special, trainer.max_length)
    loss = spec.loss(trainer.model(task, batch.inputs), batch.labels)
    head = list(trainer.model.heads[task].parameters())
    grads = torch.autograd.grad(loss, trainer.shared + head, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, trainer.shared + head, strict=True)]


def test_jacobian_rows_are_each_tasks_own_gradient(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, loop=replace(LOOP, max_grad_norm=0.0))
    trainer.model.eval()  # no dropout: the two computations must see the same network
    plan = trainer.sampler.epoch(0)[0]
    expected = {task: _task_grad(trainer, task, rows) for task, rows in plan}
    trainer.model.eval()
    trainer._task_gradients(plan, 0)
    for i, (task, _) in enumerate(plan):
        flat = torch.cat([g.reshape(-1) for g in expected[task][: len(trainer.shared)]])
        torch.testing.assert_close(trainer.jacobian[i], flat, rtol=1e-4, atol=1e-6)
        # The head of a task receives its own task's gradient and nothing else.
        for p, g in zip(trainer.model.heads[task].parameters(), expected[task][len(trainer.shared) :], strict=True):
            torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_sum_direction_equals_the_summed_loss_gradient(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir)
    trainer.model.eval()
    plan = trainer.sampler.epoch(0)[0]
    expected = sum(
        torch.cat([g.reshape(-1) for g in _task_grad(trainer, t, r)[: len(trainer.shared)]]) for t, r in plan
    )
    counts, _ = trainer._task_gradients(plan, 0)
    torch.testing.assert_close(trainer.aggregator(trainer.jacobian, counts), expected, rtol=1e-4, atol=1e-6)


def test_training_changes_weights_and_reports_metrics(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, "pcgrad")
    before = trainer.model.encoder.embeddings.word_embeddings.weight.clone()
    result = trainer.fit()
    assert not torch.equal(before, trainer.model.encoder.embeddings.word_embeddings.weight)
    assert len(result.history) == 2
    assert {"sst_acc", "para_acc", "sts_pearson", "overall", "loss_sst"} <= set(result.best_metrics)
    assert "grad/cos_sst_para" in result.best_metrics and 0 <= result.best_metrics["grad/conflict_sst_para"] <= 1
    assert result.best_metrics["overall"] == max(h["overall"] for h in result.history)


def test_gradvac_corrections_are_logged(prepared, tiny_model_dir):
    result = make_trainer(prepared, tiny_model_dir, "gradvac", beta=0.5).fit()
    assert "grad/corrections_sst_para" in result.history[0]


def test_same_seed_gives_identical_metrics(prepared, tiny_model_dir):
    a = make_trainer(prepared, tiny_model_dir, "gradvac").fit().history
    b = make_trainer(prepared, tiny_model_dir, "gradvac").fit().history
    assert a == b


@pytest.mark.parametrize("die_at_call", [3, 5])  # mid-epoch 0 (after the step-2 checkpoint); epoch 1, step 1
def test_resume_after_interruption_ends_like_an_uninterrupted_run(
    prepared, tiny_model_dir, tmp_path, monkeypatch, die_at_call
):
    reference = make_trainer(prepared, tiny_model_dir, "pcgrad").fit()
    checkpoints = Checkpointer(tmp_path / "ckpt", "key")
    trainer = make_trainer(prepared, tiny_model_dir, "pcgrad")
    calls = {"n": 0}
    real_step = Trainer.step

    def dying_step(self, plan, global_step):
        calls["n"] += 1
        if calls["n"] == die_at_call:
            raise KeyboardInterrupt
        return real_step(self, plan, global_step)

    monkeypatch.setattr(Trainer, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(checkpoints)
    monkeypatch.setattr(Trainer, "step", real_step)
    replayed = []
    resumed = make_trainer(prepared, tiny_model_dir, "pcgrad").fit(
        checkpoints, on_epoch=lambda e, m: replayed.append(e)
    )
    assert resumed.history == reference.history
    assert replayed == [0, 1]


def test_checkpoint_of_another_run_is_not_resumed(prepared, tiny_model_dir, tmp_path):
    old = make_trainer(prepared, tiny_model_dir).fit(Checkpointer(tmp_path, "old"))
    other = replace(LOOP, lr=1e-2)
    new = make_trainer(prepared, tiny_model_dir, loop=other).fit(Checkpointer(tmp_path, "new"))
    assert new.history != old.history  # trained anew with its own params, not the finished old run


def test_non_finite_loss_names_the_step_and_the_task(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir)
    with torch.no_grad():
        trainer.model.heads["para"].linear.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"step 0 on task 'para'"):
        trainer.fit()


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_every_gradient_method_trains(prepared, tiny_model_dir, name):
    options = {"weights": [1.0, 0.5, 2.0]} if name == "weighted" else {}
    trainer = make_trainer(prepared, tiny_model_dir, name, loop=replace(LOOP, epochs=1, steps_per_epoch=2), **options)
    before = [p.detach().clone() for p in trainer.shared]
    result = trainer.fit()
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.shared, strict=True))
    assert np.isfinite(result.best_metrics["overall"])


def test_task_ratio_sets_each_tasks_batch_and_leaves_ratio_zero_out(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, "swpcgrad")
    tasks = get_tasks(["para", "sts"])
    data = [d for d in trainer.data.values() if d.spec in tasks]
    batch_sizes = {"para": 12, "sts": 4}  # task_ratio {sst: 0, para: 3, sts: 1} with batch_size 4
    sampler = make_sampler("oversample", {d.spec.name: len(d.train) for d in data}, batch_sizes, 0, seed=0)
    ratio = Trainer(
        trainer.model, data, make_aggregator("swpcgrad"), LOOP, trainer.special, 32, torch.device("cpu"), sampler
    )
    plan = ratio.sampler.epoch(0)
    assert all([(t, len(r)) for t, r in step] == [("para", 12), ("sts", 4)] for step in plan)
    counts, _ = ratio._task_gradients(plan[0], 0)
    assert counts.tolist() == [12.0, 4.0]
    assert set(ratio.evaluate()) == {"para_acc", "sts_pearson", "overall"}


# --- training options: sampling, loss weights, learning rates, schedules, heads-only epochs -------------------


def test_one_task_steps_fill_only_that_tasks_jacobian_row(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, mode="sequential")
    plan = trainer.sampler.epoch(0)
    assert [[t for t, _ in step] for step in plan] == [["sst"], ["para"], ["sts"]]  # 3 steps: one per task
    counts, losses = trainer._task_gradients(plan[1], 0)
    assert counts.tolist() == [0.0, 4.0, 0.0]
    assert set(losses) == {"loss_para"}
    norms = trainer.jacobian.norm(dim=1)
    assert norms[1] > 0 and norms[0] == 0 and norms[2] == 0


def test_epoch_loss_is_the_mean_over_the_steps_that_hold_the_task(prepared, tiny_model_dir, monkeypatch):
    trainer = make_trainer(prepared, tiny_model_dir, loop=replace(LOOP, steps_per_epoch=4), mode="sequential")
    # sequential, 4 steps: sst twice, then para, then sts; fake losses 1 and 3 for sst, 5 for para, 7 for sts
    fake = iter([{"loss_sst": 1.0}, {"loss_sst": 3.0}, {"loss_para": 5.0}, {"loss_sts": 7.0}] * 2)
    monkeypatch.setattr(trainer, "step", lambda plan, step: next(fake))
    first = trainer.fit().history[0]
    assert (first["loss_sst"], first["loss_para"], first["loss_sts"]) == (2.0, 5.0, 7.0)


def test_loss_weight_scales_that_tasks_gradient_only(prepared, tiny_model_dir):
    plain = make_trainer(prepared, tiny_model_dir)
    weighted = make_trainer(prepared, tiny_model_dir, loss_weights={"sst": 0.5})
    plan = plain.sampler.epoch(0)[0]
    for trainer in (plain, weighted):
        trainer.model.eval()  # no dropout, so both see the same network
        trainer._task_gradients(plan, 0)
    torch.testing.assert_close(weighted.jacobian[0], 0.5 * plain.jacobian[0], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(weighted.jacobian[1:], plain.jacobian[1:], rtol=1e-5, atol=1e-7)


def test_each_module_kind_has_its_learning_rate(prepared, tiny_model_dir):
    loop = replace(LOOP, lr=1e-4, head_lr=2e-3, pal_lr=3e-2)
    trainer = make_trainer(prepared, tiny_model_dir, loop=loop, pals=4)
    model = trainer.model
    assert {group["initial_lr"] for group in trainer.optimizer.param_groups} == {1e-4, 2e-3, 3e-2}
    initial = {id(p): group["initial_lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert {initial[id(p)] for _, p in model.shared_parameters()} == {1e-4}
    assert {initial[id(p)] for p in model.head_parameters()} == {2e-3}
    assert {initial[id(p)] for p in model.pal_parameters()} == {3e-2}
    grouped = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == sum(1 for p in model.parameters() if p.requires_grad)


def test_linear_and_multistep_schedules():
    def factors(**kwargs) -> list[float]:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        schedule = make_schedule(optimizer, **kwargs)
        out = []
        for _ in range(kwargs["total"]):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        return out

    linear = factors(total=10, warmup_ratio=0.2)
    assert linear == pytest.approx([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125])
    multistep = factors(total=10, warmup_ratio=0.2, kind="multistep", milestones=(4, 8), gamma=0.5)
    assert multistep == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_heads_only_epochs_leave_the_encoder_unchanged(prepared, tiny_model_dir):
    loop = replace(LOOP, epochs=3, heads_only_first=1, heads_only_last=1, checkpoint_every=0)
    trainer = make_trainer(prepared, tiny_model_dir, loop=loop, pals=4)

    def state() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Flat copies of the encoder, the PALs and the SST head."""
        model = trainer.model
        return (
            torch.cat([p.detach().reshape(-1).clone() for _, p in model.shared_parameters()]),
            torch.cat([p.detach().reshape(-1).clone() for p in model.pal_parameters()]),
            model.heads["sst"].linear.weight.detach().clone(),
        )

    start, snapshots = state(), []

    def snapshot(epoch, metrics):
        snapshots.append(state())

    trainer.fit(on_epoch=snapshot)
    (enc0, pal0, head0), (enc1, pal1, head1), (enc2, pal2, head2) = snapshots
    assert torch.equal(enc0, start[0]) and torch.equal(pal0, start[1])  # epoch 0: heads only
    assert not torch.equal(head0, start[2])
    assert not torch.equal(enc1, enc0) and not torch.equal(pal1, pal0)  # epoch 1: everything trains
    assert torch.equal(enc2, enc1) and torch.equal(pal2, pal1)  # epoch 2: heads only
    assert not torch.equal(head2, head1)
    assert not trainer.model.encoder_frozen


def test_frozen_encoder_baseline_trains_heads_only(prepared, tiny_model_dir):
    loop = replace(LOOP, heads_only_first=LOOP.epochs)
    trainer = make_trainer(prepared, tiny_model_dir, loop=loop)
    before = [p.detach().clone() for _, p in trainer.model.shared_parameters()]
    result = trainer.fit()
    assert all(torch.equal(a, p) for a, (_, p) in zip(before, trainer.model.shared_parameters(), strict=True))
    assert not any(k.startswith("grad/") for k in result.history[0])  # no task gradients were aggregated
