"""The tasks the tests use: the definitions of the repository's ``params.yaml`` (``task_defs``), each with its default
head (the kind's first encoding and loss), by name."""

from __future__ import annotations

from conftest import ROOT

from mtbert.config import load_config
from mtbert.tasks import TaskSpec, task_specs

TASKS: dict[str, TaskSpec] = task_specs(load_config(ROOT / "params.yaml").task_defs)
