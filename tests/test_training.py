"""The training loop: aggregation, heads, determinism, resume, numerics, training options."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from mtbert.aggregators import AGGREGATOR_NAMES
from mtbert.checkpoint import Checkpointer
from mtbert.errors import TrainingError
from mtbert.model import build_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe
from mtbert.training import Trainer, lr_factor


def make_trainer(
    prepared: Path,
    tiny_model_dir: Path,
    grad: str = "sum",
    *,
    pals: int = 0,
    grad_options: dict | None = None,
    progress: bool = False,
    **train,
) -> Trainer:
    """A stage-1 trainer on the tiny data: 2 epochs of 3 steps of 4 rows per task; ``train`` changes train.*."""
    cfg = tiny_config(
        prepared,
        tiny_model_dir,
        model={"pals": pals},
        train={"grad": grad, "grad_options": grad_options or {}, **train},
    )
    recipe = Recipe.pretrain(cfg)
    data = load_training_data(prepared, cfg.task_specs(recipe.tasks), cfg.model.max_length)
    return Trainer(build_model(cfg.model, cfg.task_specs(), seed=123), recipe, data, progress=progress)


def test_training_changes_weights_and_reports_metrics(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, "pcgrad")
    before = {name: p.detach().clone() for name, p in trainer.model.shared_parameters()}
    result = trainer.fit()
    assert all(not torch.equal(before[name], p) for name, p in trainer.model.shared_parameters())
    assert len(result.history) == 2
    assert {"sst_acc", "para_acc", "sts_pearson", "overall", "loss_sst"} <= set(result.best_metrics)
    assert "grad/cos_sst_para" in result.best_metrics and 0 <= result.best_metrics["grad/conflict_sst_para"] <= 1
    assert result.best_metrics["overall"] == max(h["overall"] for h in result.history)


def test_gradvac_corrections_are_logged(prepared, tiny_model_dir):
    result = make_trainer(prepared, tiny_model_dir, "gradvac", grad_options={"beta": 0.5}).fit()
    assert "grad/corrections_sst_para" in result.history[0]


def test_same_seed_gives_identical_metrics(prepared, tiny_model_dir):
    a = make_trainer(prepared, tiny_model_dir, "gradvac").fit().history
    b = make_trainer(prepared, tiny_model_dir, "gradvac").fit().history
    assert a == b


def test_a_progress_bar_replaces_the_log_lines_and_changes_no_result(
    prepared, tiny_model_dir, monkeypatch, capsys, caplog
):
    monkeypatch.setattr("mtbert.training.LOG_EVERY", 1)
    with caplog.at_level("INFO", logger="mtbert.training"):
        plain = make_trainer(prepared, tiny_model_dir, "pcgrad").fit()
    assert "epoch 0 step 1/3 loss_sst=" in caplog.text
    assert "epoch 0" not in capsys.readouterr().err
    caplog.clear()
    with caplog.at_level("INFO", logger="mtbert.training"):
        shown = make_trainer(prepared, tiny_model_dir, "pcgrad", progress=True).fit()
    assert "step 1/3" not in caplog.text  # the losses go beside the bar instead
    bars = capsys.readouterr().err
    assert "epoch 1" in bars and "/3" in bars and "loss_sst=" in bars and "predict sst" in bars
    assert shown.history == plain.history


@pytest.mark.parametrize("die_at_call", [3, 5])  # mid-epoch 0 (after the step-2 checkpoint); epoch 1, step 1
def test_resume_after_interruption_ends_like_an_uninterrupted_run(
    prepared, tiny_model_dir, tmp_path, monkeypatch, caplog, die_at_call
):
    reference = make_trainer(prepared, tiny_model_dir, "pcgrad").fit()
    checkpoints = Checkpointer(tmp_path / "ckpt", "key")
    trainer = make_trainer(prepared, tiny_model_dir, "pcgrad")
    real_step = kill_at_call(monkeypatch, die_at_call)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(checkpoints)
    done = steps_in(checkpoints)
    assert done == {3: 2, 5: 3}[die_at_call]  # the step-2 checkpoint; the end of epoch 0
    counted = count_steps(monkeypatch, real_step)
    replayed = []
    with caplog.at_level(logging.INFO, logger="mtbert.training"):
        resumed = make_trainer(prepared, tiny_model_dir, "pcgrad").fit(
            checkpoints, on_epoch=lambda e, m: replayed.append(e)
        )
    where = {3: (0, 2), 5: (1, 0)}[die_at_call]
    assert f"resuming from checkpoint {checkpoints.path}: epoch {where[0]}, step {where[1]}" in caplog.messages
    assert resumed.history == reference.history
    assert replayed == [0, 1]
    assert counted["n"] == 6 - done  # the finished steps came from the checkpoint, not from a rerun


def steps_in(checkpoints: Checkpointer) -> int:
    """Steps (of 3 per epoch) a checkpoint has done."""
    payload = checkpoints.load()
    assert payload is not None
    return payload["state"]["epoch"] * 3 + payload["state"]["step"]


def kill_at_call(monkeypatch: pytest.MonkeyPatch, call: int):  # type: ignore[no-untyped-def]
    """Trainer.step raising KeyboardInterrupt at its ``call``-th call (a kill mid-run); returns the real step."""
    real_step, calls = Trainer.step, {"n": 0}

    def dying_step(self, plan, global_step):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real_step(self, plan, global_step)

    monkeypatch.setattr(Trainer, "step", dying_step)
    return real_step


def count_steps(monkeypatch: pytest.MonkeyPatch, real_step) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Trainer.step counting its calls: a run restarted from scratch would make all 6, a resumed one the rest."""
    counted = {"n": 0}

    def counting_step(self, plan, global_step):  # type: ignore[no-untyped-def]
        counted["n"] += 1
        return real_step(self, plan, global_step)

    monkeypatch.setattr(Trainer, "step", counting_step)
    return counted


NEW_METHODS = ["upgrad", "dualproj", "cagrad", "nashmtl", "config", "fairgrad", "uncertainty", "famo"]


@pytest.mark.parametrize("name", NEW_METHODS)
def test_every_method_resumes_exactly_after_a_kill_mid_epoch(prepared, tiny_model_dir, tmp_path, monkeypatch, name):
    """Killed after the step-2 checkpoint, resumed: the method's state (Nash-MTL's α, FAMO's logits, Adam state and
    previous losses, the log-variances) comes back from the checkpoint and the run ends as an uninterrupted one."""
    reference = make_trainer(prepared, tiny_model_dir, name).fit()
    checkpoints = Checkpointer(tmp_path / "ckpt", "key")
    real_step = kill_at_call(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(prepared, tiny_model_dir, name).fit(checkpoints)
    assert steps_in(checkpoints) == 2
    counted = count_steps(monkeypatch, real_step)
    resumed = make_trainer(prepared, tiny_model_dir, name)
    assert resumed.fit(checkpoints).history == reference.history
    assert counted["n"] == 4  # resumed at step 2: a restart would have made 6 (and matched the history too)
    state = resumed.aggregator.state_dict()
    if name in ("nashmtl", "uncertainty", "famo"):  # stateful: the state moved, so the test compared something
        assert state and all(torch.isfinite(v).all() for v in state.values())


def test_loss_weighting_weighs_each_tasks_head_by_its_weight(prepared, tiny_model_dir):
    """FAMO's first step weighs the task losses ∝ 1/L: each head's gradient is that weight times its plain one."""
    plain = make_trainer(prepared, tiny_model_dir, "sum", max_grad_norm=0.0)
    famo = make_trainer(prepared, tiny_model_dir, "famo", max_grad_norm=0.0)
    step = plain.sampler.epoch(0)[0]
    grads = {}
    for trainer in (plain, famo):
        torch.manual_seed(0)
        real_step = trainer.optimizer.step
        trainer.optimizer.step = lambda: None  # keep the gradients of the step
        trainer.optimizer.zero_grad = lambda set_to_none=True: None
        trainer.step(step, 0)
        trainer.optimizer.step = real_step
        grads[trainer is famo] = {t: [p.grad.clone() for p in trainer.model.task_parameters(t)] for t in ("sst", "sts")}
    weights = famo.aggregator.own_weights
    losses = famo.jacobian.losses.double()
    torch.testing.assert_close(weights, (1 / losses) / (1 / losses).sum())
    for task in ("sst", "sts"):
        i = famo.jacobian.index[task]
        for g_plain, g_famo in zip(grads[False][task], grads[True][task], strict=True):
            torch.testing.assert_close(g_famo, weights[i].item() * g_plain.to(g_famo.dtype), rtol=1e-5, atol=1e-8)


def test_checkpoint_of_another_run_is_not_resumed(prepared, tiny_model_dir, tmp_path):
    old = make_trainer(prepared, tiny_model_dir).fit(Checkpointer(tmp_path, "old"))
    new = make_trainer(prepared, tiny_model_dir, lr=1e-2).fit(Checkpointer(tmp_path, "new"))
    assert new.history != old.history  # trained anew with its own params, not the finished old run


def test_non_finite_loss_names_the_step_and_the_task(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir)
    with torch.no_grad():
        trainer.model.heads["para"].linear.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match=r"step 0 on task 'para'"):
        trainer.fit()


def test_a_non_finite_loss_in_a_later_epoch_names_the_runs_step(prepared, tiny_model_dir, monkeypatch):
    """NaN weights before the fifth step (epoch 1, step 1 of 3): the error names step 4 of the run."""
    trainer = make_trainer(prepared, tiny_model_dir)
    real_step, calls = Trainer.step, {"n": 0}

    def poisoned_step(self, plan, global_step):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            with torch.no_grad():
                self.model.heads["para"].linear.weight.fill_(float("nan"))
        return real_step(self, plan, global_step)

    monkeypatch.setattr(Trainer, "step", poisoned_step)
    with pytest.raises(TrainingError, match=r"step 4 on task 'para'"):
        trainer.fit()


@pytest.mark.parametrize("name", AGGREGATOR_NAMES)
def test_every_gradient_methods_direction_is_what_the_optimizer_applies(prepared, tiny_model_dir, name):
    options = {"weights": [1.0, 0.5, 2.0]} if name == "weighted" else {}
    trainer = make_trainer(prepared, tiny_model_dir, name, grad_options=options, max_grad_norm=0.0, weight_decay=0.1)
    shared = [p for _, p in trainer.model.shared_parameters()]
    before = torch.cat([p.detach().reshape(-1).clone() for p in shared])
    decay = {id(p): g["weight_decay"] for g in trainer.optimizer.param_groups for p in g["params"]}
    lr = trainer.optimizer.param_groups[0]["lr"]
    trainer.step(trainer.sampler.epoch(0)[0], 0)
    # The same method, fresh, on the Jacobian the step built: the direction the step must have applied.
    direction = Recipe.pretrain(trainer_config(prepared, tiny_model_dir, name, options)).make_aggregator()(
        trainer.jacobian.matrix, trainer.jacobian.counts, trainer.jacobian.losses
    )
    wd = torch.cat([torch.full((p.numel(),), decay[id(p)]) for p in shared])
    # AdamW's first step, by its definition: p <- p (1 - lr wd) - lr m^/(sqrt(v^) + eps), m^ = g, v^ = g^2.
    expected = before * (1 - lr * wd) - lr * direction / (direction.abs() + 1e-8)
    after = torch.cat([p.detach().reshape(-1) for p in shared])
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-7)
    assert direction.abs().sum() > 0


def trainer_config(prepared, tiny_model_dir, grad, options):
    return tiny_config(prepared, tiny_model_dir, train={"grad": grad, "grad_options": options})


def test_task_ratio_sets_each_tasks_batch_and_leaves_ratio_zero_out(prepared, tiny_model_dir):
    ratio = make_trainer(prepared, tiny_model_dir, "swpcgrad", task_ratio={"sst": 0, "para": 3, "sts": 1})
    plan = ratio.sampler.epoch(0)
    assert all([(t, len(r)) for t, r in step] == [("para", 12), ("sts", 4)] for step in plan)
    ratio.step(plan[0], 0)
    assert ratio.jacobian.counts.tolist() == [12.0, 4.0]
    assert set(ratio.evaluate()) == {"para_acc", "sts_pearson", "overall"}


# --- training options: sampling, loss weights, learning rates, schedules, heads-only epochs -------------------


def test_one_task_steps_fill_only_that_tasks_jacobian_row(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, sampling="sequential")
    plan = trainer.sampler.epoch(0)
    assert [[t for t, _ in step] for step in plan] == [["sst"], ["para"], ["sts"]]  # 3 steps: one per task
    losses = trainer.step(plan[1], 0)
    assert trainer.jacobian.counts.tolist() == [0.0, 4.0, 0.0]
    assert set(losses) == {"loss_para"}
    norms = trainer.jacobian.matrix.norm(dim=1)
    assert norms[1] > 0 and norms[0] == 0 and norms[2] == 0


def test_epoch_loss_is_the_mean_over_the_steps_that_hold_the_task(prepared, tiny_model_dir, monkeypatch):
    trainer = make_trainer(prepared, tiny_model_dir, steps_per_epoch=4, sampling="sequential")
    # sequential, 4 steps: sst twice, then para, then sts; fake losses 1 and 3 for sst, 5 for para, 7 for sts
    fake = iter([{"loss_sst": 1.0}, {"loss_sst": 3.0}, {"loss_para": 5.0}, {"loss_sts": 7.0}] * 2)
    monkeypatch.setattr(trainer, "step", lambda plan, step: next(fake))
    first = trainer.fit().history[0]
    assert (first["loss_sst"], first["loss_para"], first["loss_sts"]) == (2.0, 5.0, 7.0)


def test_loss_weight_scales_that_tasks_gradient_only(prepared, tiny_model_dir):
    plain = make_trainer(prepared, tiny_model_dir, max_grad_norm=0.0)
    weighted = make_trainer(prepared, tiny_model_dir, max_grad_norm=0.0, loss_weights={"sst": 0.5})
    plan = plain.sampler.epoch(0)[0]
    for trainer in (plain, weighted):
        torch.manual_seed(0)  # the same dropout masks in both
        trainer.step(plan, 0)
    torch.testing.assert_close(weighted.jacobian.matrix[0], 0.5 * plain.jacobian.matrix[0], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(weighted.jacobian.matrix[1:], plain.jacobian.matrix[1:], rtol=1e-5, atol=1e-7)


def test_each_module_kind_has_its_learning_rate(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, lr=1e-4, head_lr=2e-3, pal_lr=3e-2, pals=4)
    model = trainer.model
    assert {group["initial_lr"] for group in trainer.optimizer.param_groups} == {1e-4, 2e-3, 3e-2}
    initial = {id(p): group["initial_lr"] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert {initial[id(p)] for _, p in model.shared_parameters()} == {1e-4}
    assert {initial[id(p)] for p in model.head_parameters()} == {2e-3}
    assert {initial[id(p)] for p in model.pal_parameters()} == {3e-2}
    grouped = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert len(grouped) == len({id(p) for p in grouped}) == sum(1 for p in model.parameters() if p.requires_grad)


def test_linear_and_multistep_schedules():
    linear = [lr_factor(s, 10, 0.2, "linear", (), 0.1) for s in range(10)]
    assert linear == pytest.approx([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125])
    multistep = [lr_factor(s, 10, 0.2, "multistep", (4, 8), 0.5) for s in range(10)]
    assert multistep == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_linear_and_multistep_warm_up_over_the_whole_run_not_an_epoch():
    """The trainer passes the epoch as ``cycle`` (cosine's restart period): the other schedules ignore it. Three
    epochs of 4 steps, warmup 25%: 3 warmup steps of the 12, then linear decay."""
    linear = [lr_factor(s, 12, 0.25, "linear", (), 0.1, cycle=4) for s in range(4)]
    assert linear == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert lr_factor(1, 12, 0.25, "multistep", (8,), 0.5, cycle=4) == pytest.approx(2 / 3)


def test_one_step_after_the_warmup_decays_from_the_full_rate():
    """Two steps, one of warmup: the second runs at the full rate, (total - step) / (total - warmup) = 1."""
    assert [lr_factor(s, 2, 0.5, "linear", (), 0.1) for s in range(2)] == pytest.approx([1.0, 1.0])


def test_the_cosine_schedule_restarts_every_epoch():
    """Three epochs of 4 steps, warmup 25% of the first: 1 warmup step, then a half cosine over the 3 steps left;
    each later epoch a half cosine over its 4 steps from 1 (SGDR): every epoch ends low, a snapshot to keep."""
    cosine = [lr_factor(s, 12, 0.25, "cosine", (), 0.1, cycle=4) for s in range(12)]
    half = [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert cosine == pytest.approx([1.0, 1.0, 0.75, 0.25, *half, *half])
    assert [lr_factor(s, 4, 0.0, "cosine", (), 0.1) for s in range(4)] == pytest.approx(half)  # one epoch


def test_the_optimizer_follows_the_schedule(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, lr=1e-3, warmup_ratio=0.5, epochs=1, steps_per_epoch=4)
    seen = []
    for step in trainer.sampler.epoch(0):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.step(step, 0)
    assert seen == pytest.approx([5e-4, 1e-3, 1e-3, 5e-4])  # warmup 2 steps, then linear decay to 0 at step 4


def test_heads_only_epochs_leave_the_encoder_unchanged(prepared, tiny_model_dir):
    trainer = make_trainer(
        prepared, tiny_model_dir, epochs=3, heads_only_first=1, heads_only_last=1, checkpoint_every=0, pals=4
    )

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
    trainer = make_trainer(prepared, tiny_model_dir, epochs=2, heads_only_first=2)
    before = [p.detach().clone() for _, p in trainer.model.shared_parameters()]
    result = trainer.fit()
    assert all(torch.equal(a, p) for a, (_, p) in zip(before, trainer.model.shared_parameters(), strict=True))
    assert not any(k.startswith("grad/") for k in result.history[0])  # no task gradients were aggregated


def test_best_weights_are_saved_once_per_improvement_and_never_inside_a_checkpoint(prepared, tiny_model_dir, tmp_path):
    class Recording(Checkpointer):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            self.best_saves, self.payload_keys = 0, set()

        def save(self, payload: dict) -> None:
            self.payload_keys |= set(payload) | set(payload["state"])
            super().save(payload)

        def save_best(self, weights) -> None:
            self.best_saves += 1
            super().save_best(weights)

    trainer = make_trainer(prepared, tiny_model_dir, epochs=3)
    checkpoints = Recording(tmp_path / "ckpt", "key")
    result = trainer.fit(checkpoints)
    overall = [m["overall"] for m in result.history]
    improvements = sum(1 for i, v in enumerate(overall) if v > max(overall[:i], default=float("-inf")))
    assert checkpoints.best_saves == improvements
    assert not any("best" in key and "epoch" not in key for key in checkpoints.payload_keys)
    best = checkpoints.load_best()
    assert all(torch.equal(best[k], v) for k, v in trainer.model.state_dict().items())  # the model ends on them
    assert result.best_epoch == overall.index(max(overall))


def test_fp16_trains_with_a_loss_scale_and_skips_an_overflowing_step(prepared, tiny_model_dir):
    """fp16 autocast (on the CPU here) with dynamic loss scaling: a scale that overflows skips the step and halves."""
    trainer = make_trainer(prepared, tiny_model_dir, "pcgrad", precision="fp16")
    assert trainer.amp == torch.float16 and trainer.scaler.enabled
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.scaler.scale = 2.0**127  # the scaled gradients overflow float32
    plan = trainer.sampler.epoch(0)
    assert trainer.step(plan[0], 0) == {}
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.scaler.scale == 2.0**126 and trainer.scaler.skipped == 1
    trainer.scaler.scale = 2.0**10
    losses = trainer.step(plan[1], 1)
    assert set(losses) == {"loss_sst", "loss_para", "loss_sts"} and all(map(math.isfinite, losses.values()))
    assert not all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")
STEP_CODE = (
    "training.py",
    "jacobian.py",
    "observe.py",
    "scaling.py",
    "distributed.py",
    "model.py",
    "heads.py",
    "pals.py",
)


def count_host_reads(monkeypatch: pytest.MonkeyPatch, host: Trainer) -> list[str]:
    """Every read of a tensor's values into Python (on a GPU, each waits for the GPU) made from the step's own code
    outside the aggregator: ``file:line method``. The aggregator's outputs for the heads (``own_weights``) are CPU
    tensors it made from its CPU copy: reading those waits for nothing."""
    import inspect

    seen: list[str] = []
    for name in READS:
        real = getattr(torch.Tensor, name)

        def counting(self, *args, _real=real, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            caller = inspect.stack(0)[1]
            on_host = self is host.aggregator.own_weights
            if caller.filename.endswith(STEP_CODE) and "/mtbert/" in caller.filename and not on_host:
                seen.append(f"{Path(caller.filename).name}:{caller.lineno} {_name}")
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return seen


@pytest.mark.parametrize("name", ["sum", "swpcgrad", "gradvac", "nashmtl", "famo"])
def test_a_step_reads_nothing_back_to_the_host_outside_the_method(prepared, tiny_model_dir, monkeypatch, name):
    """No loss check, loss log or statistic reads a value back in the step: the only read-backs of a one-process
    fp32 step are the method's own copy of the [T, T] Gramian (and, for FAMO, of the T losses) to the CPU."""
    trainer = make_trainer(prepared, tiny_model_dir, name)
    plan = trainer.sampler.epoch(0)
    trainer.step(plan[0], 0)  # warm-up: lazy initialisation may read
    seen = count_host_reads(monkeypatch, trainer)
    for step in plan[1:]:
        trainer.step(step, 1)
    monkeypatch.undo()
    assert seen == []


@pytest.mark.parametrize("name", ["gradvac", "famo", "nashmtl"])
def test_the_methods_state_lives_on_the_cpu_whatever_the_training_device(prepared, tiny_model_dir, monkeypatch, name):
    """Built for another device (``meta`` stands in for a GPU: no values, only placement), the model and the Jacobian
    go there and the method's state stays on the CPU, where it works on the Gramian's copy (a buffer on the GPU
    would be read back every step)."""
    monkeypatch.setattr("mtbert.training.pick_device", lambda name: torch.device("meta"))
    trainer = make_trainer(prepared, tiny_model_dir, name)
    assert trainer.jacobian.matrix.device.type == "meta"
    assert next(trainer.model.parameters()).device.type == "meta"
    buffers = list(trainer.aggregator.buffers())
    assert buffers and all(b.device.type == "cpu" for b in buffers)


def test_curves_every_log_every_steps_hold_the_windows_means(prepared, tiny_model_dir, monkeypatch):
    """2 epochs of 3 steps, log_every 2: points after steps 2, 4, 6, each the mean over its own window of steps (the
    loss of the steps since the last point), the learning rate then, and the window's gradient statistics."""
    trainer = make_trainer(prepared, tiny_model_dir, "pcgrad", log_every=2, eval_every=0)
    points = []
    result = trainer.fit(on_curve=lambda step, values: points.append((step, values)))
    assert [step for step, _ in points] == [2, 4, 6]
    for _, values in points:
        assert {"loss_sst", "loss_para", "loss_sts", "lr", "grad/cos_sst_para", "grad/conflict_sst_para"} <= set(values)
        assert "grad/corrections_sst_para" in values and not any(k.startswith("dev/") for k in values)
    # the steps' losses: the epoch means are the means of the windows' (each window 2 steps; epoch 0 = steps 1-3)
    assert points[-1][1]["lr"] == pytest.approx(trainer.optimizer.param_groups[0]["lr"])
    assert result.history[1]["loss_sst"] == pytest.approx(
        (points[1][1]["loss_sst"] + 2 * points[2][1]["loss_sst"]) / 3, rel=0.5
    )


def test_the_curves_learning_rate_is_the_encoders_on_the_schedule(prepared, tiny_model_dir):
    """Linear decay over the 6 steps without warmup: after step s the encoder's rate is lr (6 - s) / 6; the heads'
    (head_lr, twice as high) is not the one plotted."""
    trainer = make_trainer(prepared, tiny_model_dir, lr=1e-3, head_lr=2e-3, warmup_ratio=0.0, log_every=1)
    points = []
    trainer.fit(on_curve=lambda step, values: points.append((step, values["lr"])))
    assert points == [(s, pytest.approx(1e-3 * (6 - s) / 6)) for s in range(1, 7)]


def test_curve_windows_are_exact_means_of_the_steps(prepared, tiny_model_dir, monkeypatch):
    trainer = make_trainer(prepared, tiny_model_dir, steps_per_epoch=4, sampling="sequential", log_every=2)
    fake = iter([{"loss_sst": 1.0}, {"loss_sst": 3.0}, {"loss_para": 5.0}, {"loss_sts": 7.0}] * 2)
    monkeypatch.setattr(trainer, "step", lambda plan, step: next(fake))
    points = []
    trainer.fit(on_curve=lambda step, values: points.append((step, values)))
    assert [(s, {k: v for k, v in p.items() if k.startswith("loss")}) for s, p in points] == [
        (2, {"loss_sst": 2.0}),
        (4, {"loss_para": 5.0, "loss_sts": 7.0}),
        (6, {"loss_sst": 2.0}),
        (8, {"loss_para": 5.0, "loss_sts": 7.0}),
    ]


def test_eval_every_adds_dev_points_within_the_epochs(prepared, tiny_model_dir):
    trainer = make_trainer(prepared, tiny_model_dir, log_every=0, eval_every=2, steps_per_epoch=4)
    points = []
    trainer.fit(on_curve=lambda step, values: points.append((step, values)))
    assert [step for step, _ in points] == [2, 6]  # steps 4 and 8 end an epoch: evaluated there anyway
    assert set(points[0][1]) == {"dev/sst_acc", "dev/para_acc", "dev/sts_pearson", "dev/overall"}


def test_a_resumed_run_replays_its_curves(prepared, tiny_model_dir, tmp_path, monkeypatch):
    reference_points: list = []
    make_trainer(prepared, tiny_model_dir, "pcgrad", log_every=1).fit(
        on_curve=lambda s, v: reference_points.append((s, v))
    )
    checkpoints = Checkpointer(tmp_path / "ckpt", "key")
    real_step = kill_at_call(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        make_trainer(prepared, tiny_model_dir, "pcgrad", log_every=1).fit(checkpoints)
    monkeypatch.setattr(Trainer, "step", real_step)
    points: list = []
    make_trainer(prepared, tiny_model_dir, "pcgrad", log_every=1).fit(
        checkpoints, on_curve=lambda s, v: points.append((s, v))
    )
    assert points == reference_points
