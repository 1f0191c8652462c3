"""fp16 loss scaling: the scale follows torch.amp.GradScaler's rule step for step."""

from __future__ import annotations

import torch

from mtbert.scaling import LossScaler


def test_scale_sequence_equals_torch_gradscaler():
    finite = [True, True, False, True, True, True, True, False, False, True, True, True]
    ours = LossScaler(enabled=True, init_scale=1024.0, growth_interval=3)
    theirs = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=3)
    p = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([p], lr=0.1)
    for ok in finite:
        theirs.scale(torch.ones(()))  # as a training step would: scale the loss, then backward
        p.grad = torch.full((2,), 1.0 if ok else float("inf"))
        theirs.step(optimizer)
        theirs.update()
        assert ours.update(ok) is ok
        assert ours.scale == theirs.get_scale()
    assert ours.skipped == finite.count(False)


def test_disabled_scaler_keeps_scale_one_and_takes_every_step():
    scaler = LossScaler(enabled=False)
    assert scaler.scale == 1.0 and scaler.update(False) and scaler.scale == 1.0 and scaler.skipped == 0


def test_state_round_trips():
    a = LossScaler(enabled=True, init_scale=8.0, growth_interval=2)
    a.update(True)
    a.update(False)
    a.update(True)
    b = LossScaler(enabled=True, growth_interval=2)
    b.load_state_dict(a.state_dict())
    assert (b.scale, b.growth_tracker, b.skipped) == (4.0, 1, 1)
    assert b.update(True) and b.scale == 8.0
