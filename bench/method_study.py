"""The gradient-method study in one command: queue stage 1 for every method × seed, run the queue, print the table.

    python bench/method_study.py                      # queue, run, record, report
    python bench/method_study.py --report-only        # the tables from the record and the experiments there are
    python bench/method_study.py --methods sum,famo --seeds 1,2,3 --costs grad_step.txt --out study.md
    python bench/method_study.py --methods sum,upgrad --seeds 0 --target ''   # the whole pipeline per method

``--costs`` reads the output of ``bench/grad_step.py`` (``<name> <seconds> <ratio>`` lines). Experiments are
named ``study-<method>-s<seed>`` (stage 1) or ``pipeline-<method>-s<seed>`` (``--target ''``); ``dvc exp show`` /
``dvc exp apply`` work on them as on any other. Every finished run's params and metrics are merged into
``--record`` (a JSON file to commit: experiment refs stay in the repository that ran them, a clone does not get
them), and the tables (mean ± standard deviation over seeds) are made from that record; they go to stdout and
``--out``. ``--jobs 2`` runs two experiments at once, each with half the cores (on a 2-core CPU about 1.2× the
throughput of one 2-thread job, docs/results.md; results then differ from a one-job run in the last digits).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
from pathlib import Path

from mtbert.config import load_config
from mtbert.study import collect, finished, parse_methods, study_runs, summarise, summarise_pipelines

DEFAULT_METHODS = "sum,pcgrad,swpcgrad,gradvac,upgrad,nashmtl,famo"  # tuned weights: add weighted:<sst>,<para>,<sts>
DEFAULT_RECORD = Path(__file__).parent / "results" / "method_study.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="comma list, e.g. sum,weighted:1,2,1,famo")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--target", default="pretrain", help="the stage to reproduce ('' for the whole pipeline)")
    parser.add_argument("--jobs", type=int, default=1, help="experiments at once (each gets cores / jobs threads)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--costs", type=Path)
    parser.add_argument("--raw-dir", type=Path, default=Path("data/raw"), help="passed to each run as an absolute path")
    parser.add_argument("--record", type=Path, default=DEFAULT_RECORD)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    methods = parse_methods(args.methods)
    record = json.loads(args.record.read_text(encoding="utf-8")) if args.record.exists() else {}
    if not args.report_only:
        seeds = [int(s) for s in args.seeds.split(",")]
        settings = [f"data.raw_dir={args.raw_dir.resolve()}"]
        done = finished(record | collect(exp_show(), completed()))
        for command in study_runs(methods, seeds, args.target, settings, skip=done):
            subprocess.run(command, check=True)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
        subprocess.run(["dvc", "queue", "start", "--jobs", str(args.jobs)], check=True, env=env)
        wait_for_queue(args.jobs, env)
    runs = collect(exp_show(), completed())
    record |= {name: runs[name] for name in finished(runs)}
    args.record.parent.mkdir(parents=True, exist_ok=True)
    args.record.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    costs = None
    if args.costs:
        costs = {
            f[0]: float(f[2]) for f in (line.split() for line in args.costs.read_text().splitlines()) if len(f) == 3
        }
    tasks = load_config("params.yaml").task_specs()  # the tables' metric columns, in the order of params' tasks
    tables = summarise(record, methods, costs, tasks)
    if pipelines := summarise_pipelines(record, methods, tasks):
        tables += "\nWhole pipeline (dev):\n\n" + pipelines
    print(tables)
    if args.out:
        args.out.write_text(tables, encoding="utf-8")


def exp_show(commits: int = 20) -> list[dict]:
    """Experiments of the last ``commits`` commits (a study queued before a later commit still counts)."""
    return json.loads(run_text(["dvc", "exp", "show", "--json", "--num", str(commits)]))


def completed() -> set[str]:
    """Names of the experiments that finished (queued, running and failed ones have no experiment ref)."""
    return set(run_text(["dvc", "exp", "list", "--all-commits", "--name-only"]).split())


def run_text(command: list[str]) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def wait_for_queue(jobs: int, env: dict[str, str], poll_s: float = 60.0) -> None:
    """Until ``dvc queue status`` lists no queued or running experiment. A worker sometimes exits after its task
    although tasks are still queued (seen with DVC 3.x and ``--jobs 2``); such a worker is replaced."""
    while any(word in (status := run_text(["dvc", "queue", "status"])) for word in ("Queued", "Running")):
        done = sum(line.split()[-1] in ("Success", "Failed") for line in status.splitlines()[1:] if line.split())
        active = re.search(r"Worker status: (\d+) active", status)
        print(f"{time.strftime('%H:%M:%S')} queue: {done} finished", flush=True)
        if "Queued" in status and active and int(active.group(1)) < jobs:
            subprocess.run(["dvc", "queue", "start", "--jobs", str(jobs)], check=True, env=env)
        time.sleep(poll_s)


if __name__ == "__main__":
    main()
