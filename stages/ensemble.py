"""Stage ``ensemble``: combine members' predictions; dev metrics of every member and of the ensemble.

``ensemble.rules`` picks each task's rule; with ``ensemble.select: greedy`` each task keeps the members chosen by
forward selection on dev. The choice is written to ``predictions/ensemble/members.json`` and printed.
"""

from _runner import run, write_json

from mtbert.artifacts import Artifacts
from mtbert.config import Config
from mtbert.ensemble import Predictions, align, ensemble_task, read_predictions
from mtbert.errors import DataError
from mtbert.predictions import write_predictions
from mtbert.prepare import load_prepared
from mtbert.tasks import TaskSpec, overall_score


def read_members(cfg: Config, paths: Artifacts, spec: TaskSpec, split: str) -> tuple[Predictions, list]:
    """Every candidate's predictions of ``split``, aligned and checked against the prepared ids; and the labels."""
    files = {m: paths.member_predictions(m, spec.name, split) for m in cfg.ensemble.members}
    members = align({m: read_predictions(p, spec.prediction_is_int, spec.classes) for m, p in files.items()}, files)
    expected = load_prepared(paths.prepared, spec.name, split)
    if members.ids != expected.ids:
        problem = f"ids differ from the prepared {spec.name} {split} data (stale predictions? rerun predict)"
        raise DataError.at(next(iter(files.values())), problem=problem)
    return members, expected.labels


def main(cfg: Config) -> None:
    tasks = cfg.task_specs()
    paths = cfg.artifacts()
    candidates = list(cfg.ensemble.members)
    scores: dict[str, dict[str, float]] = {name: {} for name in [*candidates, "ensemble"]}
    selection = {}
    for spec in tasks:
        rule, key = cfg.ensemble_rule(spec.name), f"{spec.name}_{spec.metric_name}"
        (dev, labels), (test, _) = read_members(cfg, paths, spec, "dev"), read_members(cfg, paths, spec, "test")
        result = ensemble_task(rule, cfg.ensemble.select, dev, test, labels, spec.metric)
        write_predictions(paths.ensemble_predictions(spec.name, "dev"), dev.ids, result.dev, spec)
        write_predictions(paths.ensemble_predictions(spec.name, "test"), test.ids, result.test, spec)
        for i, name in enumerate(candidates):
            scores[name][key] = spec.metric(dev.values[i], labels)
        scores["ensemble"][key] = spec.metric(result.dev, labels)
        selection[spec.name] = {"rule": rule, "members": [candidates[i] for i in result.members]}
    for name, values in scores.items():
        values["overall"] = overall_score(values, tasks)
        print(f"{name:>12}: " + " ".join(f"{k}={v:.4f}" for k, v in values.items()))
    if cfg.ensemble.select == "greedy":
        chosen = "; ".join(f"{t}: {', '.join(s['members'])}" for t, s in selection.items())
        print(f"greedy selection on dev (so the ensemble's dev score is optimistic): {chosen}")
    write_json(paths.ensemble_selection(), {"select": cfg.ensemble.select, "tasks": selection})
    write_json(paths.metrics("ensemble"), scores)


if __name__ == "__main__":
    run(main)
