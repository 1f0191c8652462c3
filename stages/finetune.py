"""Stage ``finetune@<task>``: from the pretrained encoder, a fresh head, trained on that task alone.

One model per seed in ``finetune.seeds`` (``models/finetune/<task>/seed-<k>``): they are ensemble members.
"""

import sys
from pathlib import Path

import torch

from dvclive import Live
from mtbert.checkpoint import Checkpointer
from mtbert.cli import run, run_key
from mtbert.config import load_config
from mtbert.model import load_model
from mtbert.stagekit import configured_tasks, make_trainer, new_model, task_data, write_json
from mtbert.tasks import TASKS, init_head


def main() -> None:
    cfg = load_config("params.yaml")
    (spec,) = configured_tasks(cfg, [sys.argv[1]])
    data = task_data(cfg, [spec])
    pretrained = load_model(Path("models/multitask"), TASKS)
    report = {}
    for seed in cfg.finetune.seeds:
        loop = cfg.finetune.for_task(spec.name, seed)
        model = new_model(cfg, [spec], seed=seed)
        # Copy the pretrained encoder and this task's PAL (load, not file copy: DVC's cache may link files
        # read-only); the head starts afresh.
        model.encoder.load_state_dict(pretrained.encoder.state_dict())
        if model.pals is not None:
            model.pals.load_task(spec.name, pretrained.pals)
        init_head(model.heads[spec.name], torch.Generator().manual_seed(seed))
        trainer = make_trainer(cfg, model, data, loop)
        key = run_key(loop, cfg.model, spec.name, files=[Path("models/multitask/model.safetensors")])
        checkpoints = Checkpointer(Path(f"checkpoints/finetune-{spec.name}-{seed}"), key)
        with Live(f"dvclive/finetune/{spec.name}/seed-{seed}", dvcyaml=None, save_dvc_exp=False) as live:

            def log(epoch: int, metrics: dict[str, float], live=live, seed=seed) -> None:
                for name, value in metrics.items():
                    live.log_metric(name, value)
                live.next_step()
                print(f"seed {seed} epoch {epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

            result = trainer.fit(checkpoints, on_epoch=log)
        model.save(Path(f"models/finetune/{spec.name}/seed-{seed}"))
        report[f"seed-{seed}"] = {"best_epoch": result.best_epoch, **result.best_metrics}
        checkpoints.clear()
    write_json(Path(f"metrics/finetune/{spec.name}.json"), report)


if __name__ == "__main__":
    run(main)
