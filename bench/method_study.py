"""The gradient-method study in one command: queue stage 1 for every method × seed, run the queue, print the table.

    python bench/method_study.py                      # queue, run (one at a time), report
    python bench/method_study.py --report-only        # the table from the experiments already run
    python bench/method_study.py --methods sum,famo --seeds 1,2,3 --costs grad_step.txt --out study.md

``--costs`` reads the output of ``bench/grad_step.py`` (``<name> <seconds> <ratio>`` lines). The table (mean ±
standard deviation over seeds) goes to stdout and to ``--out``. Experiments are named ``study-<method>-s<seed>``;
``dvc exp show`` / ``dvc exp apply`` work on them as on any other.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from mtbert.study import Method, finished, study_runs, summarise

DEFAULT_METHODS = "sum,pcgrad,swpcgrad,gradvac,upgrad,nashmtl,famo,weighted:1,1,1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma list; weighted:<w1>,<w2>,<w3> last")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--target", default="pretrain", help="the stage to reproduce ('' for the whole pipeline)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--costs", type=Path)
    parser.add_argument("--raw-dir", type=Path, default=Path("data/raw"), help="passed to each run as an absolute path")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    methods = split_methods(args.methods)
    if not args.report_only:
        seeds = [int(s) for s in args.seeds.split(",")]
        settings = [f"data.raw_dir={args.raw_dir.resolve()}"]
        for command in study_runs(methods, seeds, args.target, settings, skip=finished(exp_show())):
            subprocess.run(command, check=True)
        subprocess.run(["dvc", "queue", "start", "--jobs", "1"], check=True)
        wait_for_queue()
    show = exp_show()
    costs = None
    if args.costs:
        costs = {
            f[0]: float(f[2]) for f in (line.split() for line in args.costs.read_text().splitlines()) if len(f) == 3
        }
    table = summarise(show, methods, costs)
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")


def exp_show(commits: int = 20) -> list[dict]:
    """Experiments of the last ``commits`` commits (a study queued before a later commit still counts)."""
    return json.loads(run_text(["dvc", "exp", "show", "--json", "--num", str(commits)]))


def run_text(command: list[str]) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def wait_for_queue(poll_s: float = 30.0) -> None:
    """Until ``dvc queue status`` lists no queued or running experiment."""
    while any(word in (status := run_text(["dvc", "queue", "status"])) for word in ("Queued", "Running")):
        done = sum(line.split()[-1] in ("Success", "Failed") for line in status.splitlines()[1:] if line.split())
        print(f"{time.strftime('%H:%M:%S')} queue: {done} finished", flush=True)
        time.sleep(poll_s)


def split_methods(text: str) -> list[Method]:
    """``a,b,weighted:1,0.5,2``: the numbers after ``weighted:`` belong to it."""
    head, _, weights = text.partition("weighted:")
    names = [n for n in head.split(",") if n]
    return [Method.parse(n) for n in names] + ([Method.parse("weighted:" + weights.strip(","))] if weights else [])


if __name__ == "__main__":
    main()
