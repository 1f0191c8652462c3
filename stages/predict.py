"""Stage ``predict@<member>``: ``predictions/members/<member>/<task>-<split>.csv`` for dev and test.

``multitask`` predicts every task with the pretrained model; ``finetune-<seed>`` predicts each task with
that task's fine-tuned model of that seed.
"""

import sys
from pathlib import Path

from mtbert.cli import run
from mtbert.config import load_config
from mtbert.data.prepare import load_prepared, load_special
from mtbert.model import load_model, pick_device
from mtbert.predict import predict_split, write_predictions
from mtbert.tasks import TASKS, get_tasks


def model_folder(member: str, task: str) -> Path:
    if member == "multitask":
        return Path("models/multitask")
    return Path(f"models/finetune/{task}/seed-{member.removeprefix('finetune-')}")


def main() -> None:
    cfg = load_config("params.yaml")
    member = sys.argv[1]
    prepared = Path(cfg.data.prepared_dir)
    special = load_special(prepared)
    device = pick_device(cfg.train.device)
    models = {}
    for spec in get_tasks(cfg.tasks):
        folder = model_folder(member, spec.name)
        model = models.get(folder) or load_model(folder, TASKS).to(device)
        models[folder] = model
        spec = model.specs[spec.name]  # the head this model was trained with
        for split in ("dev", "test"):
            data = load_prepared(prepared, spec.name, split)
            values = predict_split(model, spec, data, special, cfg.model.max_length, device, cfg.predict.batch_size)
            write_predictions(Path(f"predictions/members/{member}/{spec.name}-{split}.csv"), data.ids, values, spec)


if __name__ == "__main__":
    run(main)
