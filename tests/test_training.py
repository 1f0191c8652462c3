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
from mtbert.training import TaskData, Trainer

LOOP = LoopConfig(epochs=2, steps_per_epoch=3, batch_size=4, checkpoint_every=2, lr=1e-3, seed=0)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_raw_dir, tiny_model_dir) -> Path:
    folder = tmp_path_factory.mktemp("prepared")
    prepare(list(TASKS.values()), tiny_raw_dir, folder, AutoTokenizer.from_pretrained(tiny_model_dir))
    return folder


def make_trainer(prepared: Path, tiny_model_dir: Path, grad: str = "sum", loop: LoopConfig = LOOP, **options):
    torch.manual_seed(123)
    tasks = get_tasks(["sst", "para", "sts"])
    model = MultiTaskModel(AutoModel.from_pretrained(tiny_model_dir, add_pooling_layer=False), tasks, "mean", 0.1)
    data = [
        TaskData(t, load_prepared(prepared, t.name, "train"), load_prepared(prepared, t.name, "dev")) for t in tasks
    ]
    aggregator = make_aggregator(grad, **options)
    return Trainer(model, data, aggregator, loop, load_special(prepared), 32, torch.device("cpu"))


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
