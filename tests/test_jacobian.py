"""The Jacobian of a step: each task's gradient in its own row, heads keep their own, the direction written back."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config

from mtbert.aggregators import make_aggregator
from mtbert.distributed import Group
from mtbert.jacobian import JacobianStep
from mtbert.model import build_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe


def setup(prepared, tiny_model_dir):
    cfg = tiny_config(prepared, tiny_model_dir)
    specs = cfg.task_specs()
    model = build_model(cfg.model, specs, seed=0).eval()  # no dropout: every computation sees the same network
    data = load_training_data(prepared, specs, cfg.model.max_length)
    step = Recipe.pretrain(cfg).make_sampler(data.sizes()).epoch(0)[0]
    return model, data, step


def expected_gradients(model, data, task, rows) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The task's gradient by plain autograd: flat over the shared parameters, and per head parameter."""
    shared = [p for _, p in model.shared_parameters()]
    head = list(model.heads[task].parameters())
    grads = torch.autograd.grad(model.task_loss(task, data.batch(task, rows)), shared + head, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, shared + head, strict=True)]
    return torch.cat([g.reshape(-1) for g in grads[: len(shared)]]), grads[len(shared) :]


def test_each_row_is_its_tasks_own_gradient_and_each_head_gets_only_its_own(prepared, tiny_model_dir):
    model, data, step = setup(prepared, tiny_model_dir)
    expected = {task: expected_gradients(model, data, task, rows) for task, rows in step}
    jacobian = JacobianStep(model.shared_parameters(), tuple(data.tasks), torch.device("cpu"))
    jacobian.zero()
    for task, rows in step:
        jacobian.backward(task, model.task_loss(task, data.batch(task, rows)), len(rows))
    for i, (task, rows) in enumerate(step):
        torch.testing.assert_close(jacobian.matrix[i], expected[task][0], rtol=1e-4, atol=1e-6)
        for p, g in zip(model.heads[task].parameters(), expected[task][1], strict=True):
            torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
        assert jacobian.counts[i] == len(rows)


def test_sum_of_the_rows_is_the_gradient_of_the_summed_losses(prepared, tiny_model_dir):
    model, data, step = setup(prepared, tiny_model_dir)
    summed = sum(expected_gradients(model, data, task, rows)[0] for task, rows in step)
    jacobian = JacobianStep(model.shared_parameters(), tuple(data.tasks), torch.device("cpu"))
    jacobian.zero()
    for task, rows in step:
        jacobian.backward(task, model.task_loss(task, data.batch(task, rows)), len(rows))
    direction = make_aggregator("sum")(jacobian.matrix, jacobian.counts)
    torch.testing.assert_close(direction, summed, rtol=1e-4, atol=1e-6)
    jacobian.write(direction)
    written = torch.cat([p.grad.reshape(-1) for _, p in model.shared_parameters()])
    assert torch.equal(written, direction)
    jacobian.write(None)
    assert all(p.grad is None for _, p in model.shared_parameters())


def test_zero_clears_rows_and_counts_and_the_layout_names_every_shared_parameter(prepared, tiny_model_dir):
    model, data, step = setup(prepared, tiny_model_dir)
    jacobian = JacobianStep(model.shared_parameters(), tuple(data.tasks), torch.device("cpu"))
    task, rows = step[0]
    jacobian.backward(task, model.task_loss(task, data.batch(task, rows)), len(rows))
    assert jacobian.matrix.abs().sum() > 0
    jacobian.zero()
    assert jacobian.matrix.abs().sum() == 0 and jacobian.counts.sum() == 0
    assert [n for n, _ in jacobian.layout] == [n for n, _ in model.shared_parameters()]
    assert sum(n for _, n in jacobian.layout) == jacobian.matrix.shape[1]


def test_reduce_in_one_process_keeps_used_gradients_and_releases_unused_ones(prepared, tiny_model_dir):
    """A head whose task is not in the step keeps ``.grad = None`` (the optimizer skips it, as without a buffer)."""
    model, data, step = setup(prepared, tiny_model_dir)
    task, rows = step[0]
    expected = expected_gradients(model, data, task, rows)[1]
    own = {name: model.task_parameters(name) for name in data.tasks}
    jacobian = JacobianStep(model.shared_parameters(), tuple(data.tasks), torch.device("cpu"), own)
    jacobian.zero()
    loss = model.task_loss(task, data.batch(task, rows))
    jacobian.backward(task, loss, len(rows))
    jacobian.reduce(Group())
    for p, g in zip(model.heads[task].parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
    others = [p for name in data.tasks if name != task for p in model.heads[name].parameters() if p.requires_grad]
    assert others and all(p.grad is None for p in others)
    assert jacobian.losses[jacobian.index[task]].item() == loss.item()


@pytest.mark.parametrize("scale", [2.0, 1024.0])  # 2: the fp16 scaler's scale after enough halvings
def test_share_and_factor_scale_the_row_and_unscale_undoes_the_factor(prepared, tiny_model_dir, scale):
    model, data, step = setup(prepared, tiny_model_dir)
    task, rows = step[0]
    own = {name: model.task_parameters(name) for name in data.tasks}
    jacobian = JacobianStep(model.shared_parameters(), tuple(data.tasks), torch.device("cpu"), own)
    jacobian.zero()
    loss = model.task_loss(task, data.batch(task, rows))
    jacobian.backward(task, loss, 2 * len(rows), share=0.5, factor=scale)
    jacobian.reduce(Group())
    assert jacobian.unscale(scale)
    expected = expected_gradients(model, data, task, rows)
    torch.testing.assert_close(jacobian.matrix[0], 0.5 * expected[0], rtol=1e-4, atol=1e-6)
    head = next(p for p in model.heads[task].parameters() if p.requires_grad)
    torch.testing.assert_close(head.grad, 0.5 * expected[1][0], rtol=1e-4, atol=1e-6)
    assert jacobian.counts[0] == 2 * len(rows) and jacobian.losses[jacobian.index[task]].item() == 0.5 * loss.item()
    jacobian.matrix[1, 0] = float("inf")
    assert not jacobian.unscale(scale)


def test_weigh_own_scales_each_tasks_own_gradients_by_its_weight(prepared, tiny_model_dir):
    """A loss-weighting method weighs a task's head as a weighted sum of the losses would."""
    model, data, step = setup(prepared, tiny_model_dir)
    own = {name: model.task_parameters(name) for name in data.tasks}
    jacobian = JacobianStep(model.shared_parameters(), tuple(data.tasks), torch.device("cpu"), own)
    jacobian.zero()
    for task, rows in step:
        jacobian.backward(task, model.task_loss(task, data.batch(task, rows)), len(rows))
    jacobian.reduce(Group())
    before = {id(p): p.grad.clone() for params in own.values() for p in params if p.grad is not None}
    weights = torch.tensor([0.5, 2.0, 3.0], dtype=torch.float64)[: len(data.tasks)]
    jacobian.weigh_own(weights)
    checked = 0
    for i, params in enumerate(own.values()):  # a parameter-free head (cosine STS) has nothing to weigh
        for p in [p for p in params if id(p) in before]:
            checked += 1
            torch.testing.assert_close(p.grad, weights[i].item() * before[id(p)])
    assert checked >= 2
    weighted = {i: p.grad.clone() for i, p in enumerate(jacobian.own) if p.grad is not None}
    jacobian.weigh_own(None)  # gradient methods: nothing changes
    assert all(torch.equal(jacobian.own[i].grad, g) for i, g in weighted.items())


def test_several_backward_passes_of_one_task_add_up(prepared, tiny_model_dir):
    """One task's rows in two backward passes (as several processes' shares add up): the loss is the sum of the
    shares; the count is the step's total, given with each pass."""
    model, data, step = setup(prepared, tiny_model_dir)
    task, rows = step[0]
    own = {name: model.task_parameters(name) for name in data.tasks}
    jacobian = JacobianStep(model.shared_parameters(), tuple(data.tasks), torch.device("cpu"), own)
    jacobian.zero()
    first, second = rows[:2], rows[2:]
    losses = []
    for part in (first, second):
        share = len(part) / len(rows)
        loss = model.task_loss(task, data.batch(task, part))
        losses.append(share * loss.item())
        jacobian.backward(task, loss, len(rows), share=share)
    i = jacobian.index[task]
    assert jacobian.losses[i].item() == pytest.approx(sum(losses), rel=1e-6)
    assert jacobian.counts[i] == len(rows)
