"""Stage ``finetune@<task>-<seed>``: from the pretrained encoder, a fresh head, trained on that task alone.

Writes ``models/finetune-<seed>/<task>``: with the other tasks' models of that seed, the ensemble member
``finetune-<seed>``.
"""

from pathlib import Path

from _runner import ARTIFACTS, one_of, run, write_json
from _train import run_key, train

from mtbert.artifacts import finetune_run
from mtbert.config import Config
from mtbert.model import for_finetuning, load_model
from mtbert.prepare import load_training_data
from mtbert.recipe import Recipe


def main(cfg: Config, task: str, seed: int) -> None:
    recipe = Recipe.finetune(cfg, task, seed)
    (spec,) = cfg.task_specs([task])
    data = load_training_data(Path(cfg.data.prepared_dir), [spec], cfg.model.max_length)
    model = for_finetuning(load_model(ARTIFACTS.multitask_model), cfg.model, spec, seed)
    key = run_key(recipe, cfg.model, files=[ARTIFACTS.multitask_model / "model.safetensors"])
    result = train(model, recipe, data, finetune_run(task, seed), key)
    if result is None:  # not rank 0: that process writes
        return
    model.save(ARTIFACTS.finetune_model(task, seed), cfg.model.name, cfg.model.max_length)
    write_json(ARTIFACTS.finetune_metrics(task, seed), {"best_epoch": result.best_epoch, **result.best_metrics})


if __name__ == "__main__":
    run(
        main,
        distributed=True,
        arguments=(("task", one_of(lambda c: c.tasks)), ("seed", one_of(lambda c: c.finetune.seeds))),
    )
