"""Stage ``pretrain``: multi-task training of the shared encoder with the gradient method ``train.grad``."""

from pathlib import Path

from _runner import ARTIFACTS, run, write_json
from _train import run_key, train

from mtbert.config import Config
from mtbert.model import build_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe


def main(cfg: Config) -> None:
    recipe = Recipe.pretrain(cfg)
    prepared = Path(cfg.data.prepared_dir)
    data = load_training_data(prepared, cfg.task_specs(recipe.tasks), cfg.model.max_length)
    model = build_model(cfg.model, cfg.task_specs(), seed=cfg.train.seed)
    key = run_key(recipe, cfg.model, files=sorted(prepared.glob("*")))
    result = train(model, recipe, data, "pretrain", key)
    if result is None:  # not rank 0: that process writes
        return
    model.save(ARTIFACTS.multitask_model, cfg.model.name, cfg.model.max_length)
    write_json(ARTIFACTS.metrics("pretrain"), {"best_epoch": result.best_epoch, **result.best_metrics})


if __name__ == "__main__":
    run(main, distributed=True)
