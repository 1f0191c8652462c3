"""Where every artifact lives, and the names of ensemble members: the one place that knows the layout.

Each ensemble member's models lie under one folder named after it, so ``predict@<member>`` depends on exactly its
own models::

    data/raw/, data/prepared/             the CS224N files and their tokenized cache (params data.raw_dir and
                                          data.prepared_dir choose them: :meth:`mtbert.config.Config.artifacts`)
    data/validated.txt                    the validate stage's mark (constant text)
    models/multitask/                     member "multitask": the pretrained model, one head per task
    models/finetune-<seed>/<task>/        member "finetune-<seed>": one fine-tuned model per task
    predictions/members/<member>/<task>-<split>.csv
    predictions/ensemble/<task>-<split>.csv, predictions/ensemble/members.json
    predictions/<task>-<split>-output.csv the ensemble's predictions in the CS224N leaderboard format
    metrics/{prepare,pretrain,ensemble}.json, metrics/finetune-<seed>/<task>.json
    dvclive/pretrain, dvclive/finetune-<seed>/<task>   curves under plots/metrics/ (per step: steps/)
    reports/index.html                    the report page, its PNGs and errors-<task>.csv beside it
    checkpoints/<run>/                    resumable state, outside DVC's outputs (deleted when a stage succeeds)

Paths are relative to a project root (the working directory of ``dvc repro`` by default). Every stage takes every
path it reads or writes from one :class:`Artifacts`, built from its params by :meth:`mtbert.config.Config.artifacts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MULTITASK = "multitask"
FINETUNE_PREFIX = "finetune-"


def finetune_member(seed: int) -> str:
    """The member name of the fine-tuned models of ``seed``."""
    return f"{FINETUNE_PREFIX}{seed}"


def member_names(seeds: tuple[int, ...] | list[int]) -> tuple[str, ...]:
    """Every member a run with fine-tuning ``seeds`` produces: the multi-task model, then one per seed."""
    return (MULTITASK, *(finetune_member(s) for s in seeds))


@dataclass(frozen=True)
class Artifacts:
    """The pipeline's file layout under ``root``; ``raw_dir`` and ``prepared_dir`` (relative to ``root``, or
    absolute) are the data folders the params name."""

    root: Path = Path()
    raw_dir: Path = Path("data/raw")
    prepared_dir: Path = Path("data/prepared")

    @property
    def raw(self) -> Path:
        """The folder of the raw task files (each task's ``files`` of ``task_defs``)."""
        return self.root / self.raw_dir

    @property
    def prepared(self) -> Path:
        """The tokenized cache the ``prepare`` stage writes and training and prediction read."""
        return self.root / self.prepared_dir

    @property
    def validated(self) -> Path:
        """The mark of the ``validate`` stage, which every other stage depends on."""
        return self.root / "data" / "validated.txt"

    @property
    def multitask_model(self) -> Path:
        return self.root / "models" / MULTITASK

    def finetune_model(self, task: str, seed: int) -> Path:
        return self.root / "models" / finetune_member(seed) / task

    def member_model(self, member: str, task: str) -> Path:
        """The model folder member ``member`` predicts ``task`` with."""
        if member == MULTITASK:
            return self.multitask_model
        if not member.startswith(FINETUNE_PREFIX) or not member.removeprefix(FINETUNE_PREFIX).isdigit():
            raise ValueError(f"unknown member {member!r}; expected {MULTITASK!r} or '{FINETUNE_PREFIX}<seed>'")
        return self.finetune_model(task, int(member.removeprefix(FINETUNE_PREFIX)))

    def member_predictions(self, member: str, task: str, split: str) -> Path:
        return self.root / "predictions" / "members" / member / f"{task}-{split}.csv"

    def ensemble_predictions(self, task: str, split: str) -> Path:
        return self.root / "predictions" / "ensemble" / f"{task}-{split}.csv"

    def leaderboard(self, task: str, split: str) -> Path:
        """The ensemble's ``split`` predictions of ``task`` as the CS224N leaderboard takes them."""
        return self.root / "predictions" / f"{task}-{split}-output.csv"

    def ensemble_selection(self) -> Path:
        """Which members the ensemble combined for each task, and by which rule."""
        return self.root / "predictions" / "ensemble" / "members.json"

    def metrics(self, name: str) -> Path:
        """``metrics/<name>.json`` (``name`` may hold a folder, e.g. ``finetune-1/sst``)."""
        return self.root / "metrics" / f"{name}.json"

    def finetune_metrics(self, task: str, seed: int) -> Path:
        return self.metrics(f"{finetune_member(seed)}/{task}")

    def live(self, run: str) -> Path:
        """The dvclive folder of a training run (``pretrain`` or ``finetune-<seed>/<task>``)."""
        return self.root / "dvclive" / run

    def curves(self, run: str) -> Path:
        """Where dvclive writes a run's curves: the dev metrics at each epoch's end (gradient statistics under
        ``grad/``)."""
        return self.live(run) / "plots" / "metrics"

    def step_curves(self, run: str) -> Path:
        """A run's per-step curves (every ``log_every`` steps), as ``stages/_train.py`` logs them under ``steps/``."""
        return self.curves(run) / "steps"

    @property
    def report(self) -> Path:
        """The folder of the report page (``index.html``) and everything it shows."""
        return self.root / "reports"

    def checkpoints(self, run: str) -> Path:
        return self.root / "checkpoints" / run.replace("/", "-")


def finetune_run(task: str, seed: int) -> str:
    """The run name of one fine-tuning (dvclive and checkpoint folders)."""
    return f"{finetune_member(seed)}/{task}"
