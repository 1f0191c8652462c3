"""Training and inference throughput of the embedded model on the real data, with model FLOP utilisation.

Prints one table: training examples/s and real (non-padding) tokens/s, MFU against a float32 matmul peak that
this script measures on the same device, inference examples/s, and the time of a no-op ``dvc repro``.
Run from the project root after ``make repro`` (it reads ``data/prepared``):

    python bench/throughput.py [--steps 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import replace

import torch
import transformers

from mtbert.config import load_config
from mtbert.model import build_model
from mtbert.predictions import predict_split
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe
from mtbert.training import Trainer


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 20) -> float:
    """FLOP/s of a float32 n×n matmul: the practical peak the model's matmuls could reach here."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    transformers.logging.set_verbosity_error()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = load_config("params.yaml")
    cfg = replace(cfg, train=replace(cfg.train, grad="sum", grad_options={}, device=args.device))
    data = load_training_data(cfg.artifacts().prepared, cfg.task_specs(), cfg.model.max_length)
    model = build_model(cfg.model, cfg.task_specs(), seed=0)
    # FLOPs per token: 2 per weight in the forward pass and 4 in the backward, embeddings excluded (lookups).
    dense = sum(p.numel() for n, p in model.encoder.named_parameters() if "embeddings" not in n)
    trainer = Trainer(model, Recipe.pretrain(cfg), data)
    plan = trainer.sampler.epoch(0)
    trainer.step(plan[0], 0)  # warm-up
    examples = tokens = 0
    sync(device)
    start = time.perf_counter()
    for step in plan[1 : 1 + args.steps]:
        trainer.step(step, 0)
        for task, rows in step:
            batch = data.batch(task, rows)
            examples += len(rows)
            tokens += int(batch.inputs["attention_mask"].sum())
    sync(device)
    train_s = time.perf_counter() - start
    peak = matmul_peak(device)
    mfu = 6 * dense * tokens / train_s / peak

    infer_examples = 0
    start = time.perf_counter()
    for d in data.tasks.values():
        predict_split(model, d.spec, d.dev, data.special, data.max_length, device, cfg.predict.batch_size)
        infer_examples += len(d.dev)
    infer_s = time.perf_counter() - start

    start = time.perf_counter()
    noop = subprocess.run([sys.executable, "-m", "dvc", "repro"], capture_output=True, text=True)
    noop_s = time.perf_counter() - start
    up_to_date = "up to date" in noop.stdout

    rows = [
        ("device", f"{device} ({torch.get_num_threads()} threads)"),
        ("train examples/s", f"{examples / train_s:.1f}"),
        ("train real tokens/s", f"{tokens / train_s:.0f}"),
        ("matmul peak (fp32)", f"{peak / 1e9:.1f} GFLOP/s"),
        ("model FLOP utilisation", f"{100 * mfu:.1f}%"),
        ("inference examples/s (dev)", f"{infer_examples / infer_s:.1f}"),
        ("no-op dvc repro", f"{noop_s:.2f} s" + ("" if up_to_date else " (pipeline was not up to date)")),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
