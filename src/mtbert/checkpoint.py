"""Resumable training checkpoints and the best epoch's weights.

A checkpoint is one ``torch.save`` file read back with ``weights_only=True`` (tensors, numbers, strings and
containers only: no pickled code). It carries the key of the run that wrote it, so a checkpoint left by a run
with other params or data is ignored instead of resumed. The best epoch's weights are a file of their own, written
once each time the dev score improves (not copied into every checkpoint). Both live outside DVC's outputs, which
DVC deletes before a stage runs, and are removed when the stage finishes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import Tensor

from mtbert.files import write_atomic


class Checkpointer:
    """Checkpoints of the run ``run_key`` in ``folder``; ``folder=None`` keeps them in memory (tests, benchmarks)."""

    def __init__(self, folder: Path | None, run_key: str) -> None:
        self.folder = folder
        self.run_key = run_key
        self.path = None if folder is None else folder / "state.pt"
        self._memory: dict[str, dict] = {}

    def load(self) -> dict | None:
        """The last checkpoint of this run, or None."""
        return self._read("state")

    def save(self, payload: dict) -> None:
        self._write("state", payload)

    def save_best(self, weights: dict[str, Tensor]) -> None:
        """The weights of the best epoch so far (a copy: later training does not change them)."""
        self._write("best", {"weights": {k: v.detach().cpu().clone() for k, v in weights.items()}})

    def load_best(self) -> dict[str, Tensor]:
        payload = self._read("best")
        if payload is None:
            raise FileNotFoundError(f"no best weights of run {self.run_key} in {self.folder}")
        return payload["weights"]

    def clear(self) -> None:
        self._memory.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _read(self, name: str) -> dict | None:
        if self.folder is None:
            return self._memory.get(name)
        path = self.folder / f"{name}.pt"
        if not path.exists():
            return None
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return payload if payload.get("run_key") == self.run_key else None

    def _write(self, name: str, payload: dict) -> None:
        if self.folder is None:
            self._memory[name] = {**payload, "run_key": self.run_key}
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        # atomic: a kill mid-write leaves the previous file intact
        write_atomic(self.folder / f"{name}.pt", lambda tmp: torch.save({**payload, "run_key": self.run_key}, tmp))
