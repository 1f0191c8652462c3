"""Stage ``pretrain``: multi-task training of the shared encoder with the gradient method ``train.grad``."""

from pathlib import Path

from dvclive import Live
from mtbert.checkpoint import Checkpointer
from mtbert.cli import run, run_key
from mtbert.config import load_config
from mtbert.stagekit import configured_tasks, make_trainer, new_model, task_data, write_json


def main() -> None:
    cfg = load_config("params.yaml")
    tasks = configured_tasks(cfg)
    data = task_data(cfg, tasks)
    model = new_model(cfg, tasks, seed=cfg.train.seed)
    trainer = make_trainer(cfg, model, data, cfg.train)
    key = run_key(cfg.train, cfg.model, cfg.tasks, files=sorted(Path(cfg.data.prepared_dir).glob("*")))
    checkpoints = Checkpointer(Path("checkpoints/pretrain"), key)
    with Live("dvclive/pretrain", dvcyaml=None, save_dvc_exp=False) as live:

        def log(epoch: int, metrics: dict[str, float]) -> None:
            for name, value in metrics.items():
                live.log_metric(name, value)
            live.next_step()
            print(f"epoch {epoch}: " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if "/" not in k))

        result = trainer.fit(checkpoints, on_epoch=log)
    model.save(Path("models/multitask"))
    write_json(Path("metrics/pretrain.json"), {"best_epoch": result.best_epoch, **result.best_metrics})
    checkpoints.clear()


if __name__ == "__main__":
    run(main)
