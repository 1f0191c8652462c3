"""Stage ``ensemble``: combine members' predictions; dev metrics of every member and of the ensemble."""

from pathlib import Path

from _runner import ARTIFACTS, run, write_json

from mtbert.config import Config
from mtbert.ensemble import align, read_predictions
from mtbert.errors import DataError
from mtbert.predict import write_predictions
from mtbert.prepare import load_prepared
from mtbert.tasks import TASKS, overall_score


def main(cfg: Config) -> None:
    tasks = [TASKS[t] for t in cfg.tasks]
    prepared = Path(cfg.data.prepared_dir)
    names = [*cfg.ensemble.members, "ensemble"]
    scores: dict[str, dict[str, float]] = {name: {} for name in names}
    for spec in tasks:
        for split in ("dev", "test"):
            files = {m: ARTIFACTS.member_predictions(m, spec.name, split) for m in cfg.ensemble.members}
            members = {m: read_predictions(path, spec.prediction_is_int) for m, path in files.items()}
            ids, values = align(members, files)
            expected = load_prepared(prepared, spec.name, split)
            if ids != expected.ids:
                first = next(iter(files.values()))
                problem = f"ids differ from the prepared {spec.name} {split} data (stale predictions? rerun predict)"
                raise DataError.at(first, problem=problem)
            combined = spec.combine(values)
            write_predictions(ARTIFACTS.ensemble_predictions(spec.name, split), ids, combined, spec)
            if split == "dev":
                key = f"{spec.name}_{spec.metric_name}"
                for name, pred in zip(names, [*values, combined], strict=True):
                    scores[name][key] = spec.metric(pred, expected.labels)
    for name in names:
        scores[name]["overall"] = overall_score(scores[name], tasks)
        print(f"{name:>12}: " + " ".join(f"{k}={v:.4f}" for k, v in scores[name].items()))
    write_json(ARTIFACTS.metrics("ensemble"), scores)


if __name__ == "__main__":
    run(main)
