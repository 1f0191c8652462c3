"""Stage ``report``: ``reports/index.html`` with its PNGs and ``reports/errors-<task>.csv``, for people.

Reads the ensemble stage's metrics, every member's and the ensemble's dev predictions, the raw dev files (for the
sentences) and the training runs' dvclive curves; uses no network.
"""

from pathlib import Path

from _runner import run

from mtbert.artifacts import finetune_member, finetune_run
from mtbert.config import Config
from mtbert.report.build import ReportInputs, write_report
from mtbert.report.sources import load_task_dev, read_curves, read_metrics


def read_step_curves(folder: Path) -> dict:
    """A run's per-step curves by name, the gradient statistics as ``grad/<name>``, the in-epoch dev metrics as
    ``dev/<name>``."""
    return {
        **read_curves(folder),
        **{f"grad/{k}": v for k, v in read_curves(folder / "grad").items()},
        **{f"dev/{k}": v for k, v in read_curves(folder / "dev").items()},
    }


def main(cfg: Config) -> None:
    paths = cfg.artifacts()
    tasks = []
    for spec in cfg.task_specs():
        name = spec.name
        files = {m: paths.member_predictions(m, name, "dev") for m in cfg.ensemble.members}
        raw = paths.raw / spec.file_name("dev")
        ensemble = paths.ensemble_predictions(name, "dev")
        tasks.append(load_task_dev(spec, raw, files, ensemble, cfg.data.on_malformed))
    metrics = paths.metrics("ensemble")
    pretrain = paths.curves("pretrain")
    finetune = {
        t: {finetune_member(s): read_curves(paths.curves(finetune_run(t, s))) for s in cfg.finetune.seeds}
        for t in cfg.tasks
    }
    runs = ["pretrain", *(finetune_run(t, s) for t in cfg.tasks for s in cfg.finetune.seeds)]
    steps = {run: read_step_curves(paths.step_curves(run)) for run in runs}
    inputs = ReportInputs(
        tasks=tasks,
        recorded=read_metrics(metrics),
        recorded_name=str(metrics),
        pretrain=read_curves(pretrain),
        grad=read_curves(pretrain / "grad"),
        finetune=finetune,
        steps=steps,
    )
    page = write_report(paths.report, inputs, cfg.report.errors, cfg.report.bootstrap, cfg.report.seed)
    print(f"report: {page} (open it in a browser; it loads nothing from the network)")


if __name__ == "__main__":
    run(main)
