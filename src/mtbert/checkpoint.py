"""Resumable training checkpoints.

A checkpoint is one ``torch.save`` file read back with ``weights_only=True`` (tensors, numbers, strings and
containers only: no pickled code). It carries the key of the run that wrote it, so a checkpoint left by a run
with other params or data is ignored instead of resumed. It lives outside DVC's outputs, which DVC deletes
before a stage runs, and is removed when the stage finishes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch


class Checkpointer:
    def __init__(self, folder: Path, run_key: str) -> None:
        self.folder = folder
        self.run_key = run_key
        self.path = folder / "state.pt"

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        payload = torch.load(self.path, map_location="cpu", weights_only=True)
        if payload.get("run_key") != self.run_key:
            return None
        return payload

    def save(self, payload: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({**payload, "run_key": self.run_key}, tmp)
        os.replace(tmp, self.path)  # atomic: a kill mid-write leaves the previous checkpoint intact

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
