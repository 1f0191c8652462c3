"""Stage ``predict@<member>``: ``predictions/members/<member>/<task>-<split>.csv`` for dev and test (with the class
probabilities of a classification task).

``multitask`` predicts every task with the pretrained model; ``finetune-<seed>`` predicts each task with that
task's fine-tuned model of that seed.
"""

import sys

from _runner import one_of, run

from mtbert.config import Config
from mtbert.devices import pick_device
from mtbert.model import load_model
from mtbert.predictions import predict_split, write_predictions
from mtbert.prepare import load_prepared, load_special


def main(cfg: Config, member: str) -> None:
    paths = cfg.artifacts()
    prepared = paths.prepared
    special = load_special(prepared)
    device = pick_device(cfg.predict.device)
    models = {}
    for task in cfg.tasks:
        folder = paths.member_model(member, task)
        if folder not in models:  # the multitask member predicts every task with one model
            models[folder] = load_model(folder).to(device)
        model = models[folder]
        spec = model.specs[task]  # the head this model was trained with
        for split in ("dev", "test"):
            data = load_prepared(prepared, task, split)
            out = predict_split(
                model,
                spec,
                data,
                special,
                cfg.model.max_length,
                device,
                cfg.predict.batch_size,
                cfg.predict.precision,
                progress=sys.stderr.isatty(),
            )
            path = paths.member_predictions(member, task, split)
            write_predictions(path, data.ids, out.values, spec, out.probabilities)


if __name__ == "__main__":
    run(main, arguments=(("member", one_of(lambda c: c.ensemble.members)),))
