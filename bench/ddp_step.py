"""Step time with N processes: mtbert's Jacobian all-reduce path against plain DistributedDataParallel, for ``sum``.

Both train the embedded model on the same global batches (every task, ``--batch`` examples each, split between
the processes), with the same AdamW step and clipping; CPU processes with the gloo backend, one thread each unless
``--threads``. ``ddp``: the model wrapped in ``DistributedDataParallel``, ``(Σ task losses).backward()`` (DDP
overlaps its all-reduce of the [P] gradient with the backward). ``jacobian``: ``Trainer.step`` (per-task backward
into the [T, P] buffer, one all-reduce of it, aggregation). Also times the two all-reduces alone. Rounds alternate
the two paths so that machine noise hits them alike. Prints ``<name> <median_seconds>`` lines and the ratio.

    python bench/ddp_step.py [--nproc 2] [--rounds 10] [--batch 16] [--grad sum]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import replace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import transformers
from torch.nn.parallel import DistributedDataParallel

from mtbert.config import load_config
from mtbert.distributed import join, leave
from mtbert.model import build_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe
from mtbert.training import Trainer


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    dist.barrier()
    return time.perf_counter() - start


def worker(rank: int, args: argparse.Namespace, init: str) -> None:
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    group = join(torch.device("cpu"), rank, args.nproc, rank, init_method=init)
    cfg = load_config("params.yaml")
    cfg = replace(cfg, train=replace(cfg.train, device="cpu", grad=args.grad, grad_options={}, batch_size=args.batch))
    recipe = Recipe.pretrain(cfg)
    data = load_training_data(cfg.artifacts().prepared, cfg.task_specs(recipe.tasks), cfg.model.max_length)
    trainer = Trainer(build_model(cfg.model, cfg.task_specs(), seed=0), recipe, data, group)
    group.broadcast_module(trainer.model)
    plan = trainer.sampler.epoch(0)

    ddp_model = build_model(cfg.model, cfg.task_specs(), seed=0)
    ddp = DistributedDataParallel(ddp_model)
    groups = ddp_model.param_groups(cfg.train.lr, cfg.train.head_lr, cfg.train.pal_lr, cfg.train.weight_decay)
    optimizer = torch.optim.AdamW(groups, fused=True)

    def ddp_step(step) -> None:
        ddp.train()
        losses = []
        for task, rows in step:
            mine = group.shard(rows)
            batch = data.batch(task, mine)
            # DDP averages gradients over processes: scale by the share, times N, for the global batch's mean
            losses.append(
                ddp_model.specs[task].loss(ddp(task, batch.inputs).float(), batch.labels)
                * len(mine)
                / len(rows)
                * args.nproc
            )
        sum(losses).backward()
        torch.nn.utils.clip_grad_norm_(ddp_model.parameters(), cfg.train.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    width = trainer.jacobian.matrix.shape[1]
    rows, flat = torch.randn(len(recipe.tasks), width), torch.randn(width)
    times = {"ddp": [], "jacobian": [], "allreduce_TxP": [], "allreduce_P": []}
    for i in range(args.warmup + args.rounds):
        step = plan[i % len(plan)]
        round_times = {
            "ddp": timed(lambda: ddp_step(step)),  # noqa: B023
            "jacobian": timed(lambda: trainer.step(step, i)),  # noqa: B023
            "allreduce_TxP": timed(lambda: dist.all_reduce(rows)),
            "allreduce_P": timed(lambda: dist.all_reduce(flat)),
        }
        if i >= args.warmup:
            for name, value in round_times.items():
                times[name].append(value)
    if group.main:
        medians = {name: statistics.median(values) for name, values in times.items()}
        print(
            f"# {args.nproc} processes x {args.threads} thread(s), gloo, grad={args.grad}, batch {args.batch} per task"
        )
        print(f"# shared parameters P = {width}, tasks T = {len(recipe.tasks)}, {args.rounds} rounds")
        for name, value in medians.items():
            print(f"{name} {value:.4f}")
        print(f"ratio jacobian/ddp {medians['jacobian'] / medians['ddp']:.3f}")
    leave()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--grad", default="sum")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(worker, args=(args, f"file://{tmp}/rendezvous"), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
