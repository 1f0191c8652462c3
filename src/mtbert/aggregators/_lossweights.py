"""Loss-weighting methods: the direction is ``Σ_i w_i g_i`` with weights learned from the task losses.

They read each step's losses (:meth:`Aggregator.read_losses`), keep their state (weights, the state of their own
Adam, the previous losses) in buffers, so ``state_dict`` round trips and a resumed run continues exactly, and weigh
each task's own parameters (heads, PALs) by the same ``w_i`` (``own_weights``), as a weighted sum of the losses
would.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _options
from ._base import GramianWeightedAggregator
from ._registry import register

_BETAS = (0.9, 0.999)
_EPS = 1e-8


def adam_step(param: Tensor, grad: Tensor, state: dict[str, Tensor], lr: float, weight_decay: float = 0.0) -> None:
    """One step of Adam (Kingma & Ba 2015) in place, as ``torch.optim.Adam`` takes it (L2 ``weight_decay`` added to
    the gradient); ``state`` holds ``exp_avg``, ``exp_avg_sq`` and ``step``."""
    grad = grad + weight_decay * param if weight_decay else grad
    state["step"] += 1
    t = state["step"].item()
    state["exp_avg"].mul_(_BETAS[0]).add_(grad, alpha=1 - _BETAS[0])
    state["exp_avg_sq"].mul_(_BETAS[1]).addcmul_(grad, grad, value=1 - _BETAS[1])
    denom = (state["exp_avg_sq"] / (1 - _BETAS[1] ** t)).sqrt().add_(_EPS)
    param.addcdiv_(state["exp_avg"], denom, value=-lr / (1 - _BETAS[0] ** t))


class _LossWeighted(GramianWeightedAggregator):
    """Shared machinery: a ``[T]`` float64 parameter trained by its own Adam, created at :meth:`bind`."""

    requires_losses = True
    resizable_buffers = ("param", "exp_avg", "exp_avg_sq")

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr, self.weight_decay = lr, weight_decay
        for name in ("param", "exp_avg", "exp_avg_sq"):
            self.register_buffer(name, torch.zeros(0, dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.losses: Tensor | None = None

    def bind(self, layout: list[tuple[str, int]], n_tasks: int) -> None:
        super().bind(layout, n_tasks)
        for name in ("param", "exp_avg", "exp_avg_sq"):
            setattr(self, name, torch.zeros(n_tasks, dtype=torch.float64))
        self.step.zero_()

    def reset(self) -> None:
        self.bind([], max(len(self.param), 1))

    def read_losses(self, losses: Tensor) -> None:
        if self.step.item() == 0 and len(self.param) != len(losses):  # not bound, or bound to other tasks: start
            self.bind([], len(losses))
        if len(self.param) != len(losses):
            name, bound = type(self).__name__, len(self.param)
            raise ValueError(f"{name} was bound to {bound} tasks but got {len(losses)} losses.")
        self.losses = losses

    def _adam(self, grad: Tensor) -> None:
        state = {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "step": self.step}
        adam_step(self.param, grad, state, self.lr, self.weight_decay)


@register("uncertainty")
class Uncertainty(_LossWeighted):
    """Uncertainty weighting, Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for
    Scene Geometry and Semantics", CVPR 2018: the loss ``Σ_i exp(-s_i) L_i + s_i`` with a learned log-variance
    ``s_i`` per task (their Eq. 10, the form they train with). The direction is ``Σ_i exp(-s_i) g_i``; then each
    ``s_i`` takes an Adam step on ``1 - exp(-s_i) L_i``, its gradient, so ``exp(-s_i)`` tends to ``1 / L_i``.
    Starts at ``s = 0``: the first step is ``sum``. Scale: a sum.

    Kendall et al. train ``s`` with the network's optimizer; here it has its own Adam so that its rate does not
    follow the encoder's (at 1e-4, ``s`` could move by at most 0.04 in the default 400 steps).

    :param lr: Adam's learning rate for ``s`` (> 0, default 1e-2).
    """

    def __init__(self, lr: float = 1e-2) -> None:
        super().__init__(_options.real("lr", lr, low_open=True))

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        w = torch.exp(-self.param)
        self._adam(1 - w * self.losses)
        self.own_weights = w
        return w

    def extra_repr(self) -> str:
        return f"lr={self.lr}"


@register("famo")
class FAMO(_LossWeighted):
    """FAMO, Liu et al., "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023, Algorithm 1: task weights
    ``z = softmax(ξ)``; the direction is the gradient of ``Σ_i z_i log(L_i - m_i)`` normalised to weights summing to
    1, ``w_i = z_i / (c (L_i - m_i))`` with ``c = Σ_j z_j / (L_j - m_j)``; the logits ``ξ`` take an Adam step (L2
    decay ``gamma``) on ``Jᵀ δ`` with ``δ_i = log(L_i^prev - m_i) - log(L_i - m_i)``, the fall of task ``i``'s log
    loss, and ``J`` the softmax's Jacobian, so weight moves toward the tasks whose loss falls slowest. Scale: a
    mean.

    The paper measures the fall by evaluating the same batch again after the update (one more forward pass per
    step); here the fall is measured from one step's losses to the next step's (another batch): no extra pass,
    so the step costs what ``sum``'s does, at the price of a noisier ``δ``. ``ξ`` is updated before the weights of
    the step are computed (the first step has no previous losses: uniform weights).

    :param lr: Adam's learning rate for ``ξ`` (> 0; default 0.025, the paper's).
    :param gamma: L2 decay of ``ξ`` (>= 0; default 0.001, the paper's).
    :param min_loss: The ``m_i`` of every task, a lower bound of its loss (>= 0, default 0).
    """

    resizable_buffers = (*_LossWeighted.resizable_buffers, "prev_losses")

    def __init__(self, lr: float = 0.025, gamma: float = 0.001, min_loss: float = 0.0) -> None:
        super().__init__(_options.real("lr", lr, low_open=True), _options.real("gamma", gamma))
        self.min_loss = _options.real("min_loss", min_loss)
        self.register_buffer("prev_losses", torch.zeros(0, dtype=torch.float64))

    def bind(self, layout: list[tuple[str, int]], n_tasks: int) -> None:
        super().bind(layout, n_tasks)
        self.prev_losses = torch.zeros(0, dtype=torch.float64)

    def weights(self, gramian: Tensor, counts: Tensor | None, rtol: float) -> Tensor:
        gap = (self.losses - self.min_loss).clamp(min=0) + _EPS
        if len(self.prev_losses):
            fall = ((self.prev_losses - self.min_loss).clamp(min=0) + _EPS).log() - gap.log()
            z = torch.softmax(self.param, 0)
            self._adam(z * (fall - (z * fall).sum()))  # the softmax Jacobian (symmetric) times the fall
        self.prev_losses = self.losses.clone()
        z = torch.softmax(self.param, 0)
        w = z / gap
        w = w / w.sum()
        self.own_weights = w
        return w

    def extra_repr(self) -> str:
        return f"lr={self.lr}, gamma={self.weight_decay}, min_loss={self.min_loss}"
