"""Mutation testing of the training loop (``training.py``, ``training_state.py``), apart from ``make mutate``.

    make mutate-training                                   # every mutant of the two modules
    make mutate-training GLOBS='mtbert.training.x_lr_factor*'  # some of them (mutmut's mutant names)

Its tests (``tests/test_training.py``) run tiny training runs, minutes for each surviving mutant on two cores, so it
gets a folder of its own, ``.mutants-training/`` (a copy of the tracked ``src/``, ``tests/``, ``params.yaml`` and
``pyproject.toml`` with ``[tool.mutmut]`` pointed at the loop): mutmut keeps one set of results per folder, and a
changed selection would reset ``mutants/``. Results: ``cd .mutants-training && ../.venv/bin/mutmut results``, or
``python bench/mutation_scores.py --folder .mutants-training/mutants``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".mutants-training"
MODULES = ["src/mtbert/training.py", "src/mtbert/training_state.py"]
TESTS = ["tests/test_training_state.py", "tests/test_checkpoint.py", "tests/test_training.py"]


def point_at_the_loop(pyproject: str) -> str:
    """``pyproject.toml`` with ``only_mutate`` and the test selection of ``[tool.mutmut]`` replaced by the loop's."""
    for key, values in (("only_mutate", MODULES), ("pytest_add_cli_args_test_selection", TESTS)):
        pyproject, found = re.subn(
            rf"^{key} = \[.*?^\]\n", f"{key} = {values!r}\n".replace("'", '"'), pyproject, flags=re.M | re.S
        )
        if found != 1:
            raise SystemExit(f"pyproject.toml: [tool.mutmut] {key} not found as a multi-line list")
    return pyproject


def copy_tree() -> None:
    """The tracked files mutmut needs, copied over the previous copy (its ``mutants/`` and results are kept)."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "src", "tests", "params.yaml"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, files):
        target = FOLDER / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / name).read_bytes())
    (FOLDER / "pyproject.toml").write_text(point_at_the_loop((ROOT / "pyproject.toml").read_text("utf-8")), "utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("globs", nargs="*", help="mutant names or globs (default: every mutant of the two modules)")
    parser.add_argument("--max-children", default="2")
    args = parser.parse_args()
    copy_tree()
    mutmut = Path(sys.executable).parent / "mutmut"
    return subprocess.run([str(mutmut), "run", "--max-children", args.max_children, *args.globs], cwd=FOLDER).returncode


if __name__ == "__main__":
    raise SystemExit(main())
