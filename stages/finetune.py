"""Stage ``finetune@<task>-<seed>``: from the pretrained encoder, a fresh head, trained on that task alone.

Writes ``models/finetune-<seed>/<task>``: with the other tasks' models of that seed, the ensemble member
``finetune-<seed>``.
"""

from _runner import one_of, run, write_json
from _train import run_key, train

from mtbert.artifacts import finetune_run
from mtbert.config import Config
from mtbert.model import for_finetuning, load_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe


def main(cfg: Config, task: str, seed: int) -> None:
    recipe = Recipe.finetune(cfg, task, seed)
    (spec,) = cfg.task_specs([task])
    paths = cfg.artifacts()
    data = load_training_data(paths.prepared, [spec], cfg.model.max_length)
    model = for_finetuning(load_model(paths.multitask_model), cfg.model, spec, seed)
    key = run_key(recipe, cfg.model, files=[paths.multitask_model / "model.safetensors"])
    result = train(model, recipe, data, paths, finetune_run(task, seed), key)
    if result is None:  # not rank 0: that process writes
        return
    model.save(paths.finetune_model(task, seed), cfg.model.name, cfg.model.max_length)
    write_json(paths.finetune_metrics(task, seed), {"best_epoch": result.best_epoch, **result.best_metrics})


if __name__ == "__main__":
    run(
        main,
        distributed=True,
        arguments=(("task", one_of(lambda c: c.tasks)), ("seed", one_of(lambda c: c.finetune.seeds))),
    )
