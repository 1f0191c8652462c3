"""Projected Attention Layers (Stickland & Murray 2019, "BERT and PALs", arXiv:1902.02671).

A BERT layer computes ``h = LN(x + SA(x))``; with PALs it computes ``h = LN(x + SA(x) + TS_l(x))`` where
``TS_l(x) = V_D · MHA_l(V_E · x)`` belongs to the active task: ``V_E`` (hidden -> size) and ``V_D`` (size -> hidden)
are shared across layers per task, ``MHA_l`` is a per-layer, per-task multi-head self-attention in the reduced
dimension ``size``. Only the active task's PAL runs, so the other tasks' PAL parameters receive no gradient.

Hook design: the encoder is left untouched, so its ``state_dict`` keys stay those of a plain ``BertModel`` and
pretrained weights copy between models with and without PALs. Instead, a forward pre-hook on each
``encoder.encoder.layer[l].attention.output`` (HF ``BertSelfOutput``, computing ``LN(dropout(dense(a)) + x)``)
rewrites its arguments ``(a, x)`` to ``(a, x + TS_l(x))``, which yields exactly ``LN(SA(x) + x + TS_l(x))``.
The PAL parameters live in this module, not in the encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle


def check_pal_size(size: int, heads: int) -> None:
    """``ValueError`` unless ``size`` is 0 (no PALs) or a positive multiple of ``heads`` >= 1."""
    if heads < 1:
        raise ValueError(f"pal_heads: must be >= 1, got {heads}")
    if size < 0 or size % heads:
        raise ValueError(f"pals: expected 0 (no PALs) or a size >= 1 divisible by pal_heads ({heads}), got {size}")


class ProjectedAttentionLayers(nn.Module):
    """Task-specific PALs added beside each self-attention of a BERT encoder (Stickland & Murray 2019).

    Args:
        tasks: the task names that get a PAL; ``active`` with any other name leaves the encoder unchanged.
        hidden: the encoder's hidden size.
        n_layers: the encoder's number of layers (checked by ``attach``).
        size: the reduced dimension of ``MHA_l`` (204 with 12 heads for BERT-base in the paper).
        heads: attention heads of ``MHA_l``; must divide ``size``.
        dropout: dropout on the attention weights of ``MHA_l``.

    ``V_D`` starts at zero (our choice; the paper does not say), so attaching fresh PALs leaves a pretrained
    encoder's output unchanged at step 0 and training starts from the pretrained model. As with LoRA's zero ``B``,
    only ``V_D`` gets a gradient on the first step; ``V_E`` and ``MHA_l`` train from the second on.
    """

    def __init__(
        self, tasks: list[str], hidden: int, n_layers: int, size: int = 204, heads: int = 12, dropout: float = 0.1
    ) -> None:
        super().__init__()
        check_pal_size(size, heads)
        if size == 0:
            raise ValueError("pals: a PAL needs a size >= 1 (0 means no PALs: build none)")
        self.hidden, self.n_layers = hidden, n_layers
        self.encode = nn.ModuleDict({t: nn.Linear(hidden, size) for t in tasks})
        self.decode = nn.ModuleDict({t: nn.Linear(size, hidden) for t in tasks})
        self.attention = nn.ModuleDict(
            {
                t: nn.ModuleList(
                    nn.MultiheadAttention(size, heads, dropout=dropout, batch_first=True) for _ in range(n_layers)
                )
                for t in tasks
            }
        )
        for decoder in self.decode.values():
            nn.init.zeros_(decoder.weight)
            nn.init.zeros_(decoder.bias)
        self._task: str | None = None
        self._padding: Tensor | None = None
        self._handles: list[RemovableHandle] = []

    def attach(self, encoder: nn.Module) -> None:
        """Register the pre-hooks on ``encoder.encoder.layer[*].attention.output``, replacing earlier ones."""
        layers = encoder.encoder.layer
        if len(layers) != self.n_layers:
            raise ValueError(f"PALs were built for {self.n_layers} layers but the encoder has {len(layers)}")
        hidden = getattr(getattr(encoder, "config", None), "hidden_size", self.hidden)
        if hidden != self.hidden:
            raise ValueError(f"PALs were built for hidden size {self.hidden} but the encoder has {hidden}")
        self.detach()
        self._handles = [
            layer.attention.output.register_forward_pre_hook(partial(self._hook, index), with_kwargs=True)
            for index, layer in enumerate(layers)
        ]

    def detach(self) -> None:
        """Remove the hooks registered by ``attach`` (a no-op when not attached)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def load_task(self, task: str, source: ProjectedAttentionLayers | None) -> None:
        """Copy ``task``'s PAL weights from ``source`` (e.g. the pretrained model's PALs); a no-op when None."""
        if source is None:
            return
        for part in ("encode", "decode", "attention"):
            getattr(self, part)[task].load_state_dict(getattr(source, part)[task].state_dict())

    @contextmanager
    def active(self, task: str, attention_mask: Tensor) -> Iterator[None]:
        """Run ``task``'s PAL during encoder calls in this block; ``attention_mask`` is the batch's [B, S] mask."""
        previous = self._task, self._padding
        padding = attention_mask == 0
        # A row of padding only would attend to nothing and give NaN; let it attend to everything instead.
        self._task, self._padding = task, padding & ~padding.all(dim=-1, keepdim=True)
        try:
            yield
        finally:
            self._task, self._padding = previous

    def _hook(self, index: int, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict] | None:
        task = self._task
        if task is None or task not in self.encode:
            return None
        if len(args) >= 2:
            return (args[0], args[1] + self._project(task, index, args[1]), *args[2:]), kwargs
        x = kwargs["input_tensor"]
        return args, {**kwargs, "input_tensor": x + self._project(task, index, x)}

    def _project(self, task: str, index: int, x: Tensor) -> Tensor:
        reduced = self.encode[task](x)
        attended, _ = self.attention[task][index](
            reduced, reduced, reduced, key_padding_mask=self._padding, need_weights=False
        )
        return self.decode[task](attended)
