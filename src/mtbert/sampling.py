"""Which rows of which task each training step uses.

A sampler turns task sizes into an epoch *plan*: a list of steps, each a list of ``(task, rows)``. Plans are
pure functions of ``(seed, epoch)``, so a resumed run rebuilds the same plan and skips the steps it did.
"""

from __future__ import annotations

import numpy as np

Step = list[tuple[str, np.ndarray]]


class RoundRobinSampler:
    """Every step takes one batch from every task (what gradient surgery needs: all tasks in each step).

    The epoch lasts ``steps`` steps (0: one pass over the largest task); smaller tasks cycle, reshuffled at each
    pass, so no data set is cut short the way ``zip`` over loaders would.
    """

    def __init__(self, sizes: dict[str, int], batch_size: int, steps: int, seed: int) -> None:
        if any(n < 1 for n in sizes.values()):
            raise ValueError(f"every task needs training rows, got sizes {sizes}")
        self.sizes = sizes
        self.batch_size = batch_size
        self.steps = steps or max(-(-n // batch_size) for n in sizes.values())
        self.seed = seed

    def epoch(self, epoch: int) -> list[Step]:
        rng = np.random.default_rng([self.seed, epoch])
        streams = {task: self._stream(rng, n) for task, n in self.sizes.items()}
        return [[(task, next(stream)) for task, stream in streams.items()] for _ in range(self.steps)]

    def _stream(self, rng: np.random.Generator, n: int):
        order = rng.permutation(n)
        pos = 0
        while True:
            if pos + self.batch_size > n and pos > 0:
                # Start a new pass rather than emit a short batch; the unused tail comes back next pass.
                order, pos = rng.permutation(n), 0
            rows = order[pos : pos + self.batch_size]
            pos += self.batch_size
            yield rows
