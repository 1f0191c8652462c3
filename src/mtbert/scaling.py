"""Dynamic loss scaling for fp16 training, with the rule and defaults of ``torch.amp.GradScaler``.

fp16 gradients of small losses underflow to zero; multiplying each task's loss by ``scale`` before its backward keeps
them representable. The Jacobian is divided by ``scale`` before aggregation (aggregators see true gradients). A step
whose gradients hold an inf or NaN is skipped and the scale halves; after ``growth_interval`` finite steps in a row it
doubles. ``GradScaler`` itself cannot serve here: it unscales the optimizer's ``.grad`` after the step is aggregated,
while surgery must see unscaled, finite task gradients before (GradVac's targets would take in the NaN). The scale
sequence equals ``GradScaler``'s for the same finite/non-finite steps (``tests/test_scaling.py`` checks it).
"""

from __future__ import annotations


class LossScaler:
    """``enabled=False`` (fp32, bf16): the scale stays 1 and every step is taken."""

    def __init__(
        self,
        enabled: bool,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ) -> None:
        self.enabled = enabled
        self.scale = init_scale if enabled else 1.0
        self.growth_factor, self.backoff_factor, self.growth_interval = growth_factor, backoff_factor, growth_interval
        self.growth_tracker = 0  # finite steps since the last change
        self.skipped = 0  # steps skipped for an inf or NaN

    def update(self, finite: bool) -> bool:
        """Record a step's outcome; whether to take the step (always, when disabled)."""
        if not self.enabled:
            return True
        if not finite:
            self.scale *= self.backoff_factor
            self.growth_tracker = 0
            self.skipped += 1
            return False
        self.growth_tracker += 1
        if self.growth_tracker == self.growth_interval:
            self.scale *= self.growth_factor
            self.growth_tracker = 0
        return True

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "growth_tracker": self.growth_tracker, "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale, self.growth_tracker, self.skipped = (
            state["scale"],
            int(state["growth_tracker"]),
            int(state["skipped"]),
        )
