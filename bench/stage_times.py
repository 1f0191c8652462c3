"""Where the minutes of a pipeline run go: runs ``dvc repro`` and prints each stage's wall time.

Passes its arguments to ``dvc repro`` (e.g. ``--force`` to rerun every stage) and streams DVC's output; each stage
runs from its "Running stage" line to the next stage's (or the end), so DVC's own bookkeeping between stages
counts toward the stage before. Prints a markdown table: stage, seconds, share of the run; then stage groups
(``finetune@sst-1`` counts toward ``finetune``). Run from the project root with the venv on PATH:

    python bench/stage_times.py --force
"""

from __future__ import annotations

import re
import subprocess
import sys
import time

STAGE = re.compile(r"Running stage '([^']+)'")


def main() -> int:
    start = time.perf_counter()
    marks: list[tuple[str, float]] = [("(dvc start-up)", start)]
    with subprocess.Popen(
        ["dvc", "repro", *sys.argv[1:]], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            if match := STAGE.search(line):
                marks.append((match.group(1), time.perf_counter()))
    end = time.perf_counter()
    total = end - start
    rows = [(name, nxt - t) for (name, t), (_, nxt) in zip(marks, [*marks[1:], ("", end)], strict=True)]
    print("\n| stage | s | share |\n|---|---|---|")
    for name, secs in rows:
        print(f"| `{name}` | {secs:.0f} | {secs / total:.0%} |")
    groups: dict[str, float] = {}
    for name, secs in rows:
        group = name.split("@")[0]
        groups[group] = groups.get(group, 0.0) + secs
    print("\n| stage group | s | share |\n|---|---|---|")
    for name, secs in groups.items():
        print(f"| `{name}` | {secs:.0f} | {secs / total:.0%} |")
    print(f"\ntotal {total:.0f} s ({total / 60:.1f} min), dvc repro exit {proc.returncode}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
