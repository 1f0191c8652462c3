"""Time against accuracy of one task's fine-tuning, for the choices the default run could make (issue "the same
accuracy in half the time"): where the ensemble's members come from, how long they train, frozen layers.

    python bench/levers.py --task para --variant seeds --seeds 1,2,3            # today's: 3 runs, 1 epoch each
    python bench/levers.py --task para --variant snapshots --seeds 1 --members 3 # 1 run, 3 cosine cycles (epochs)
    python bench/levers.py --task para --variant seeds --seeds 1,2 --steps 320 --freeze 2
    python bench/levers.py --report                                             # the table of every recorded run

Each variant fine-tunes from ``models/multitask`` (the default run's stage 1) with the params of ``params.yaml``
and the changes given, predicts dev with every member and scores the members and their ensemble (the task's rule,
as the ensemble stage). ``snapshots``: one run of ``--members`` epochs of ``--steps / --members`` steps, the
``cosine`` schedule (a cycle per epoch), each epoch's last weights a member (Huang et al. 2017); ``checkpoints``:
the same with the linear schedule over all epochs (no restarts); ``seeds``: one run per seed. Every result goes
to ``bench/results/levers.json`` with its wall time, the machine's date and the commit.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import transformers

from mtbert.combine import RULES
from mtbert.config import load_config
from mtbert.devices import pick_device
from mtbert.model import build_model, for_finetuning, load_model
from mtbert.predictions import predict_split
from mtbert.prepare import load_prepared, load_special, load_training_data
from mtbert.recipe import Recipe
from mtbert.training import Trainer

RECORD = Path(__file__).parent / "results" / "levers.json"


def members_of_run(
    cfg, task: str, seed: int, variant: str, n_members: int, steps: int, freeze: int, start: str
) -> tuple:  # type: ignore[no-untyped-def]
    """Train one run; its members' state dicts and the run's wall time."""
    ft = cfg.finetune
    epochs = 1 if variant == "seeds" else n_members
    schedule = {"seeds": ft.schedule, "snapshots": "cosine", "checkpoints": "linear"}[variant]
    loop = dataclasses.replace(
        ft,
        epochs=epochs,
        steps_per_epoch=steps // epochs,
        task_steps={task: steps // epochs},
        schedule=schedule,
        freeze_layers=freeze,
        checkpoint_every=0,
    )
    cfg = dataclasses.replace(cfg, finetune=loop)
    recipe = Recipe.finetune(cfg, task, seed)
    (spec,) = cfg.task_specs([task])
    data = load_training_data(cfg.artifacts().prepared, [spec], cfg.model.max_length)
    if start == "embedded":  # no stage 1: the pretrained encoder of model.name, a fresh head
        model = build_model(cfg.model, [spec], seed)
    else:
        model = for_finetuning(load_model(cfg.artifacts().multitask_model), cfg.model, spec, seed)
    trainer = Trainer(model, recipe, data)
    snapshots: list[dict] = []
    start = time.perf_counter()
    trainer.fit(on_epoch=lambda e, m: snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()}))
    seconds = time.perf_counter() - start
    return (snapshots if variant != "seeds" else snapshots[-1:]), model, spec, seconds


def dev_predictions(cfg, model, spec, states: list[dict]) -> list:  # type: ignore[no-untyped-def]
    prepared = cfg.artifacts().prepared
    data, special, device = load_prepared(prepared, spec.name, "dev"), load_special(prepared), pick_device("cpu")
    out = []
    for state in states:
        model.load_state_dict(state)
        out.append(predict_split(model, spec, data, special, cfg.model.max_length, device, 128, "fp32"))
    return out, np.asarray(data.labels, dtype=float)


def score(spec, predictions: list, gold: np.ndarray) -> dict:  # type: ignore[no-untyped-def]
    values = np.stack([p.values for p in predictions])
    probabilities = None if spec.classes == 0 else np.stack([p.probabilities for p in predictions])
    result = {"members": [float(spec.metric(v, gold)) for v in values]}
    for rule in spec.rules:
        result[rule] = float(spec.metric(RULES[rule](values, probabilities), gold))
    return result


def run(args: argparse.Namespace) -> dict:
    cfg = load_config("params.yaml")
    task, steps = args.task, args.steps or cfg.finetune.task_steps.get(args.task, cfg.finetune.steps_per_epoch)
    predictions, seconds = [], 0.0
    for seed in [int(s) for s in args.seeds.split(",")]:
        states, model, spec, took = members_of_run(
            cfg, task, seed, args.variant, args.members, steps, args.freeze, args.start
        )
        seconds += took
        preds, gold = dev_predictions(cfg, model, spec, states)
        predictions += preds
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "task": task,
        "variant": args.variant,
        "seeds": args.seeds,
        "members_per_run": args.members if args.variant != "seeds" else 1,
        "steps_per_run": steps,
        "freeze_layers": args.freeze,
        "start": args.start,
        "train_seconds": round(seconds, 1),
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
        "threads": torch.get_num_threads(),
        **score(spec, predictions, gold),
    }


def report(records: list[dict], specs: dict) -> str:
    """Markdown: one row per record; ``specs`` (by task name) give each task's ensemble rules."""
    lines = [
        "| task | variant | seeds | steps/run | frozen | train s | members | card rule | mean prob. |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        rules = specs[r["task"]].rules
        members = " / ".join(f"{m:.4f}" for m in r["members"])
        cells = [
            r["task"],
            r["variant"],
            r["seeds"],
            r["steps_per_run"],
            r["freeze_layers"],
            r["train_seconds"],
            members,
        ]
        cells += [f"{r[rules[0]]:.4f}", f"{r[rules[1]]:.4f}" if len(rules) > 1 else "—"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main() -> None:
    transformers.logging.set_verbosity_error()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="para")
    parser.add_argument("--variant", choices=["seeds", "snapshots", "checkpoints"], default="seeds")
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--members", type=int, default=3, help="members of one run (snapshots, checkpoints)")
    parser.add_argument("--steps", type=int, default=0, help="steps of one run (0: the task's finetune steps)")
    parser.add_argument("--freeze", type=int, default=0, help="finetune.freeze_layers")
    parser.add_argument(
        "--start", choices=["multitask", "embedded"], default="multitask", help="stage 1's model or none"
    )
    parser.add_argument("--record", type=Path, default=RECORD)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    records = json.loads(args.record.read_text()) if args.record.exists() else []
    if not args.report:
        result = run(args)
        records = json.loads(args.record.read_text()) if args.record.exists() else []  # another job may have added
        records.append(result)
        args.record.write_text(json.dumps(records, indent=1) + "\n")
    specs = {spec.name: spec for spec in load_config("params.yaml").task_specs()}  # the ensemble rules per task
    print(report(records, specs))


if __name__ == "__main__":
    main()
