"""Stage ``ensemble``: combine members' predictions; dev metrics of every member and of the ensemble."""

from pathlib import Path

from mtbert.cli import run
from mtbert.config import load_config
from mtbert.data.prepare import load_prepared
from mtbert.ensemble import align, read_predictions
from mtbert.errors import DataError
from mtbert.predict import write_predictions
from mtbert.stagekit import write_json
from mtbert.tasks import get_tasks, overall_score


def main() -> None:
    cfg = load_config("params.yaml")
    tasks = get_tasks(cfg.tasks)
    prepared = Path(cfg.data.prepared_dir)
    names = [*cfg.ensemble.members, "ensemble"]
    scores: dict[str, dict[str, float]] = {name: {} for name in names}
    for spec in tasks:
        for split in ("dev", "test"):
            files = {m: Path(f"predictions/members/{m}/{spec.name}-{split}.csv") for m in cfg.ensemble.members}
            members = {m: read_predictions(path, spec.prediction_is_int) for m, path in files.items()}
            ids, values = align(members, files)
            expected = load_prepared(prepared, spec.name, split)
            if ids != expected.ids:
                first = next(iter(files.values()))
                problem = f"ids differ from the prepared {spec.name} {split} data (stale predictions? rerun predict)"
                raise DataError.at(first, problem=problem)
            combined = spec.combine(values)
            write_predictions(Path(f"predictions/ensemble/{spec.name}-{split}.csv"), ids, combined, spec)
            if split == "dev":
                key = f"{spec.name}_{spec.metric_name}"
                for name, pred in zip(names, [*values, combined], strict=True):
                    scores[name][key] = spec.metric(pred, expected.labels)
    for name in names:
        scores[name]["overall"] = overall_score(scores[name], tasks)
        print(f"{name:>12}: " + " ".join(f"{k}={v:.4f}" for k, v in scores[name].items()))
    write_json(Path("metrics/ensemble.json"), scores)


if __name__ == "__main__":
    run(main)
