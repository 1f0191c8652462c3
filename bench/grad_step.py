"""Median time of one multi-task training step for every gradient method, against a plain summed-loss step.

Identical batches (the embedded model, every task, 16 examples each; CPU unless --device), the same AdamW step
and clipping for all. Methods are timed in interleaved rounds so that machine noise hits them alike.
Prints one line per method: ``<name> <median_seconds> <ratio_to_sum>`` (``plain`` is ``(Σ losses).backward()``).

    python bench/grad_step.py [--rounds 15] [--batch 16] [--methods sum,pcgrad,...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch
import transformers

from mtbert.aggregators import AGGREGATOR_NAMES
from mtbert.config import load_config
from mtbert.model import build_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe
from mtbert.training import Trainer

DEFAULT_OPTIONS = {"weighted": {"weights": [1.0, 1.0, 1.0]}}


def main() -> None:
    transformers.logging.set_verbosity_error()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--methods", default=",".join(AGGREGATOR_NAMES))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    cfg = load_config("params.yaml")
    cfg = replace(cfg, train=replace(cfg.train, device=args.device))
    data = load_training_data(cfg.artifacts().prepared, cfg.task_specs(), cfg.model.max_length)
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    plan = [(name, torch.randperm(n, generator=generator)[: args.batch].numpy()) for name, n in data.sizes().items()]
    model = build_model(cfg.model, cfg.task_specs(), seed=0).to(device)
    loop = cfg.train

    def plain_step(optimizer: torch.optim.Optimizer) -> None:
        """The textbook step: one backward of the summed losses."""
        model.train()
        total = sum(model.task_loss(task, data.batch(task, rows).to(device)) for task, rows in plan)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), loop.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    groups = model.param_groups(loop.lr, loop.head_lr, loop.pal_lr, loop.weight_decay)
    plain_optimizer = torch.optim.AdamW(groups, fused=device.type in ("cpu", "cuda"))
    steps = {"plain": lambda: plain_step(plain_optimizer)}
    for name in args.methods.split(","):
        train = replace(cfg.train, grad=name, grad_options=DEFAULT_OPTIONS.get(name, {}))
        trainer = Trainer(model, Recipe.pretrain(replace(cfg, train=train)), data)
        steps[name] = lambda trainer=trainer: trainer.step(plan, 0)

    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(args.warmup + args.rounds):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_ >= args.warmup:
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["sum"]) if "sum" in times else statistics.median(times["plain"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name} {median:.4f} {median / base:.3f}")


if __name__ == "__main__":
    main()
