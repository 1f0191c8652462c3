"""Stage ``leaderboard@<task>``: the ensemble's dev and test predictions of one task as the CS224N leaderboard
takes them, ``predictions/<task>-dev-output.csv`` and ``predictions/<task>-test-output.csv``.

One stage per task of ``tasks`` (a run on fewer tasks writes fewer files); it reads what ``ensemble`` wrote.
"""

from _runner import one_of, run

from mtbert.config import Config
from mtbert.ensemble import read_predictions
from mtbert.leaderboard import write_leaderboard


def main(cfg: Config, task: str) -> None:
    (spec,) = cfg.task_specs([task])
    paths = cfg.artifacts()
    for split in ("dev", "test"):
        predictions = read_predictions(paths.ensemble_predictions(task, split), spec.prediction_is_int)
        write_leaderboard(paths.leaderboard(task, split), predictions.ids, predictions.values, spec)
        print(f"{paths.leaderboard(task, split)}: {len(predictions.ids)} rows")


if __name__ == "__main__":
    run(main, arguments=(("task", one_of(lambda c: c.tasks)),))
