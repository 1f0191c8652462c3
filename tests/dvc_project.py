"""Helpers of the end-to-end tests: a temporary git + DVC project holding this repository's pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(cwd / "src"),
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tiny_params(raw_dir: Path, model_dir: Path) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["raw_dir"] = str(raw_dir)
    params["model"]["name"] = str(model_dir)
    params["model"]["max_length"] = 32
    for section in ("train", "finetune"):
        params[section].update(epochs=2, steps_per_epoch=3, batch_size=4, checkpoint_every=2, freeze_layers=0)
    params["finetune"]["seeds"] = [1, 2]
    params["finetune"]["task_steps"] = {}
    params["ensemble"]["members"] = ["multitask", "finetune-1", "finetune-2"]
    params["ensemble"]["rules"] = {"sst": "rounded_mean", "para": "majority_vote", "sts": "mean"}  # the card's
    params["ensemble"]["select"] = "all"
    return params


def make_project(folder: Path, params: dict) -> Path:
    """A fresh git + DVC project holding this repository's pipeline, with ``params``."""
    for name in ("stages", "src"):
        shutil.copytree(ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", ".gitignore", ".dvcignore"):
        shutil.copy(ROOT / name, folder / name)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "init", "-q", "-b", "main"], folder)
    run([sys.executable, "-m", "dvc", "init", "-q"], folder)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], folder)
    run(["git", "add", "-A"], folder)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], folder)
    return folder


def copy_project(project: Path, dest: Path) -> Path:
    """A copy of a reproduced project's files (not its git or DVC folders) to break without harming the original."""
    shutil.copytree(project, dest, symlinks=True, ignore=shutil.ignore_patterns(".dvc", ".git", "checkpoints"))
    return dest


def snapshot(
    project: Path, outputs: tuple[str, ...] = ("data", "models", "predictions", "metrics", "dvclive", "reports")
) -> dict:
    """Every file under ``outputs``, by path: to compare before and after."""
    files = {}
    for name in outputs:
        path = project / name
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if file.is_file():
                files[file.relative_to(project).as_posix()] = file.read_bytes()
    return files


def set_param(project: Path, key: str, value: object) -> None:
    """Set the dotted ``key`` of the project's params.yaml to ``value``."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    *sections, last = key.split(".")
    target = params
    for section in sections:
        target = target[section]
    target[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
