"""Which rows of which task each training step uses.

A sampler turns task sizes into an epoch *plan*: a list of steps, each a list of ``(task, rows)``. Plans are
pure functions of ``(seed, epoch)``, so a resumed run rebuilds the same plan and skips the steps it did.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

Step = list[tuple[str, np.ndarray]]

MEGABATCH = 50  # batches per length-sorted pool, as in HF Trainer's group_by_length


def length_grouped(order: np.ndarray, lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Reorder ``order`` so that each run of ``batch_size`` rows has similar lengths.

    Pools of ``MEGABATCH`` batches are sorted by length (longest first) and cut into batches whose order is
    then shuffled: batches stay random, but padding to the longest member wastes little compute.
    """
    pool = batch_size * MEGABATCH
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    full = [b for b in batches if len(b) == batch_size]
    rest = [b for b in batches if len(b) < batch_size]
    return np.concatenate([full[i] for i in rng.permutation(len(full))] + rest) if batches else order


class RoundRobinSampler:
    """Every step takes one batch from every task (what gradient surgery needs: all tasks in each step).

    The epoch lasts ``steps`` steps (0: one pass over the largest task); smaller tasks cycle, reshuffled at each
    pass, so no data set is cut short the way ``zip`` over loaders would. With ``lengths`` given, batches are
    grouped by length (see :func:`length_grouped`).
    """

    def __init__(
        self,
        sizes: dict[str, int],
        batch_size: int | dict[str, int],
        steps: int,
        seed: int,
        lengths: dict[str, np.ndarray] | None = None,
    ) -> None:
        if any(n < 1 for n in sizes.values()):
            raise ValueError(f"every task needs training rows, got sizes {sizes}")
        self.sizes = sizes
        self.batch_sizes = batch_size if isinstance(batch_size, dict) else dict.fromkeys(sizes, batch_size)
        # steps=0: one pass over the largest task, no repeats
        self.steps = steps or max(1, max(n // self.batch_sizes[t] for t, n in sizes.items()))
        self.seed = seed
        self.lengths = lengths

    def epoch(self, epoch: int) -> list[Step]:
        rng = np.random.default_rng([self.seed, epoch])
        streams = {task: self._stream(rng, task) for task in self.sizes}
        return [[(task, next(stream)) for task, stream in streams.items()] for _ in range(self.steps)]

    def _pass(self, rng: np.random.Generator, task: str) -> np.ndarray:
        order = rng.permutation(self.sizes[task])
        if self.lengths is None:
            return order
        return length_grouped(order, self.lengths[task], self.batch_sizes[task], rng)

    def _stream(self, rng: np.random.Generator, task: str) -> Iterator[np.ndarray]:
        order, pos, size = self._pass(rng, task), 0, self.batch_sizes[task]
        while True:
            if pos + size > len(order) and pos > 0:
                # Start a new pass rather than emit a short batch; the unused tail comes back next pass.
                order, pos = self._pass(rng, task), 0
            yield order[pos : pos + size]
            pos += size
