"""Stage ``pretrain``: multi-task training of the shared encoder with the gradient method ``train.grad``."""

from _runner import run, write_json
from _train import run_key, train

from mtbert.config import Config
from mtbert.model import build_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe


def main(cfg: Config) -> None:
    recipe = Recipe.pretrain(cfg)
    paths = cfg.artifacts()
    prepared = paths.prepared
    data = load_training_data(prepared, cfg.task_specs(recipe.tasks), cfg.model.max_length)
    model = build_model(cfg.model, cfg.task_specs(), seed=cfg.train.seed)
    key = run_key(recipe, cfg.model, files=sorted(prepared.glob("*")))
    result = train(model, recipe, data, paths, "pretrain", key)
    if result is None:  # not rank 0: that process writes
        return
    model.save(paths.multitask_model, cfg.model.name, cfg.model.max_length)
    write_json(paths.metrics("pretrain"), {"best_epoch": result.best_epoch, **result.best_metrics})


if __name__ == "__main__":
    run(main, distributed=True)
