"""The ``mtbert`` command (``[project.scripts]``): ``mtbert predict`` asks saved models about sentences or a file;
``mtbert compare`` tells whether two runs really differ on dev; ``mtbert export`` writes a model in formats other
tools load.

An entry point, like the stage scripts: it reads the command line and the terminal, the library does the work
(:mod:`mtbert.predictor`). A problem the user can fix is one line on stderr and exit status 2.

Examples::

    mtbert predict --model models/finetune-1/sst "a gorgeous, witty film"
    mtbert predict --model models/finetune-1/para "How do I learn Python?" "What is the best way to learn Python?"
    mtbert predict --model models/multitask --task sts "A man plays a guitar." "A man is playing music."
    mtbert predict --model models/finetune-1/sst --input data/raw/ids-sst-test-student.csv --output sst-test.csv
    mtbert predict --ensemble --model models/finetune-1/sst --model models/finetune-2/sst "a gorgeous, witty film"
    mtbert compare                           # the workspace against HEAD
    mtbert compare main my-branch my-exp     # each against main; an experiment by its name
    mtbert export --model models/finetune-1/sts --format sentence-transformers --output sts-model
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import NoReturn

from mtbert.errors import DataError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage error is one line too (argparse would print the usage first)."""
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="mtbert", description="Multi-task BERT: predictions from trained models.")
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = commands.add_parser("predict", help="predict sentences, a sentence pair or a CS224N file")
    p.add_argument("sentences", nargs="*", help="one sentence or two, as the task reads (sst: one; para, sts: two)")
    p.add_argument("--model", action="append", required=True, type=Path, help="a model folder (repeat for --ensemble)")
    p.add_argument("--task", help="the task to predict (needed for a model of several tasks, e.g. models/multitask)")
    p.add_argument("--input", type=Path, help="a CS224N file (tab-separated, label column optional) to score")
    p.add_argument("--output", type=Path, help="where --input's predictions go (id,prediction[,p_0,...]), a new file")
    p.add_argument("--force", action="store_true", help="replace --output if it exists (never the input file)")
    p.add_argument("--ensemble", action="store_true", help="combine every --model by the task's ensemble rule")
    p.add_argument("--rule", help="the ensemble rule (default: the task's first, as in the ensemble stage)")
    p.add_argument("--batch-size", type=int, default=128, help="as predict.batch_size (same bytes)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    c = commands.add_parser("compare", help="is the difference real? paired comparison of runs' dev predictions")
    c.add_argument(
        "revisions", nargs="*", help="git commits, branches, tags or experiment names (default: HEAD and the workspace)"
    )
    c.add_argument("--members", action="store_true", help="compare the ensemble's members too")
    c.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    c.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples of the dev examples (>= 100)")
    c.add_argument("--seed", type=int, default=0, help="of the resamples")
    c.add_argument("--html", type=Path, help="also write the comparison as DIR/index.html (a new or empty folder)")
    c.add_argument("--repo", default=".", help="the project (default: here)")
    e = commands.add_parser("export", help="a trained model as a transformers, sentence-transformers or ONNX folder")
    e.add_argument("--model", required=True, type=Path, help="a model folder (models/multitask, models/finetune-1/sts)")
    e.add_argument("--format", required=True, help="hf | sentence-transformers | onnx")
    e.add_argument("--output", required=True, type=Path, help="the export's folder (a new name)")
    e.add_argument("--task", help="the task to export (sentence-transformers, onnx: needed for several tasks)")
    e.add_argument("--force", action="store_true", help="replace --output if it exists (never the model folder)")
    e.add_argument("--metrics", type=Path, help="the run's metrics file (default: found by the pipeline's layout)")
    e.add_argument("--params", type=Path, help="the params file it was trained with (default: the project's)")
    return top


def check_arguments(args: argparse.Namespace) -> None:
    """Every option that can be checked without a model, before any model loads: one :class:`DataError` each."""
    if len(args.model) > 1 and not args.ensemble:
        raise DataError(f"--model: {len(args.model)} models given; add --ensemble")
    if args.rule and not args.ensemble:
        raise DataError("--rule: only with --ensemble")
    if (args.input is None) == (not args.sentences):
        raise DataError("give either sentences or --input (not both)")
    if (args.input is None) != (args.output is None):
        raise DataError("--input and --output go together")
    if args.batch_size < 1:
        raise DataError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if args.input is not None:
        check_output(args.output, args.input, args.force)


def check_output(output: Path, source: Path, force: bool) -> None:
    """The predictions of ``source`` may go to ``output``: never onto the input, never over an existing file without
    ``force``, never into a folder that does not exist (the user names it; nothing is created behind their back)."""
    if not source.is_file():
        raise DataError.at(source, problem="input file not found")
    if output.resolve() == source.resolve() or (output.exists() and output.samefile(source)):
        raise DataError(f"--output: {output} is the input file; choose another name")
    if output.is_dir():
        raise DataError(f"--output: {output} is a folder; give a file name")
    if not output.parent.is_dir():
        raise DataError(f"--output: the folder {output.parent} does not exist (create it first)")
    if output.exists() and not force:
        raise DataError(f"--output: {output} exists; add --force to replace it")


def predict(args: argparse.Namespace) -> None:
    from mtbert.devices import pick_device
    from mtbert.predictions import write_predictions
    from mtbert.predictor import (
        check_rule,
        combine_members,
        describe,
        load_predictor,
        member_spec,
        pick_task,
        read_input,
        saved_heads,
        sentences_table,
    )

    check_arguments(args)
    try:
        device = pick_device(args.device)
    except ValueError as err:
        raise DataError(f"--{err}") from None
    heads = saved_heads(args.model)  # every model's tasks, from its mtbert.json: nothing loads before the checks
    task = pick_task(heads, args.task)
    spec = member_spec(heads, task)
    rule = args.rule or spec.rules[0]
    check_rule(spec, rule)
    table = read_input(args.input, spec) if args.input else sentences_table(spec, args.sentences)
    tokenizers: dict[str, object] = {}
    predictors = [load_predictor(folder, device, tokenizers) for folder in args.model]
    show = args.input is not None and sys.stderr.isatty()
    results = [p.predict(task, table, args.batch_size, progress=show) for p in predictors]
    result = combine_members(spec, results, rule) if args.ensemble else results[0]
    if args.output is not None:
        probabilities = None if args.ensemble else result.probabilities  # as the ensemble stage writes them
        write_predictions(args.output, table.ids, result.values, spec, probabilities)  # atomic: old file or new
        print(f"{args.output}: {len(table.ids)} predictions of task {task}")
        return
    print("\n".join(describe(spec, result)))
    if args.ensemble:
        print(f"ensemble: {rule} of {len(predictors)} models (probabilities: their mean)")
        for p, r in zip(predictors, results, strict=True):
            print(f"  {p.folder}: {describe(spec, r)[0].split(': ', 1)[1]}")


WORKSPACE = "workspace"


def revision_reader(repo: str, revision: str | None):  # type: ignore[no-untyped-def]
    """A reader of files as ``revision`` holds them (None: the workspace): git for tracked files, DVC's cache (or
    remote) for pipeline outputs. An experiment name is resolved to its ref."""
    import dvc.api
    from dvc.exceptions import DvcException
    from scmrepo.exceptions import RevError

    rev = None if revision is None else resolve_revision(repo, revision)

    def read(path: str) -> bytes:
        try:
            return dvc.api.read(path, repo=repo, rev=rev, mode="rb")
        except (DvcException, FileNotFoundError, OSError) as err:
            raise FileNotFoundError(path) from err
        except RevError:
            raise DataError(f"{revision}: not a git revision or an experiment of this repository") from None

    return read


def resolve_revision(repo: str, revision: str) -> str:
    """A git revision as it is; an experiment name (``dvc exp list``) as its ref."""
    from dvc.repo import Repo
    from dvc.repo.experiments.utils import resolve_name

    with Repo(repo) as dvc_repo:
        scm = dvc_repo.scm
        try:
            scm.resolve_rev(revision)
            return revision
        except Exception:  # scmrepo raises its own error types per backend
            ref = resolve_name(scm, revision).get(revision)
            if ref is None:
                raise DataError(f"{revision}: not a git revision or an experiment of this repository") from None
            return str(ref)


def compare(args: argparse.Namespace) -> None:
    import yaml

    from mtbert.compare import Comparison, compare_tasks, comparison_page, format_comparisons
    from mtbert.files import write_text_atomic
    from mtbert.revisions import ENSEMBLE, pair_runs, read_dev_run

    if args.resamples < 100:
        raise DataError(f"--resamples: must be >= 100 (a 95% interval needs them), got {args.resamples}")
    if args.html is not None and args.html.exists() and (not args.html.is_dir() or any(args.html.iterdir())):
        raise DataError(f"--html: {args.html} exists and is not an empty folder")
    revisions = args.revisions or ["HEAD", None]
    if len(revisions) < 2:
        raise DataError("give at least two revisions (or none: HEAD against the workspace)")
    found = []
    for revision in revisions:
        label = revision or WORKSPACE
        read = revision_reader(args.repo, revision)
        try:
            params = yaml.safe_load(read("params.yaml"))
            tasks, prepared = params["tasks"], params["data"]["prepared_dir"]
            members = tuple(params["ensemble"]["members"]) if args.members else ()
            defs = params.get("task_defs")
        except FileNotFoundError:
            raise DataError(f"{label}: params.yaml: not found") from None
        except (KeyError, TypeError, AttributeError, yaml.YAMLError) as err:
            raise DataError(f"{label}: params.yaml: not a pipeline's params ({err})") from None
        found.append((label, read, tasks, prepared, members, defs))
    # a revision from before tasks were defined in params.yaml reads its tasks by the definitions of a later one
    later = next((defs for *_, defs in found if defs is not None), None)
    runs = []
    for label, read, tasks, prepared, members, defs in found:
        specs = revision_specs(label, tasks, defs if defs is not None else later)
        runs.append(read_dev_run(label, read, specs, prepared, members))
    models = [ENSEMBLE, *(m for m in runs[0].models if m != ENSEMBLE)]
    comparisons = [
        Comparison(
            runs[0].label, run.label, model, compare_tasks(pair_runs(runs[0], run, model), args.resamples, args.seed)
        )
        for run in runs[1:]
        for model in models
    ]
    print(format_comparisons(comparisons, args.format))
    if args.html is not None:
        args.html.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.html / "index.html", comparison_page(comparisons))
        print(f"{args.html / 'index.html'}: the comparison as a page")


def revision_specs(label: str, tasks: list[str], defs: dict | None) -> dict:
    """The tasks of a revision's params, built from ``defs`` (its ``task_defs``); a one-line error naming the key."""
    from mtbert._typed import build
    from mtbert.errors import ConfigError
    from mtbert.task_defs import TaskDef
    from mtbert.tasks import TaskSpec

    if not isinstance(defs, dict):
        raise DataError(f"{label}: params.yaml: no task_defs mapping (and no other revision compared has one)")
    specs = {}
    for name in tasks:
        if name not in defs:
            raise DataError(f"{label}: params.yaml: tasks: task {name!r} has no definition in task_defs")
        try:
            specs[name] = TaskSpec(name, build(TaskDef, defs[name], f"task_defs.{name}"))
        except ConfigError as err:
            raise DataError(f"{label}: params.yaml: {err}") from None
    return specs


def export(args: argparse.Namespace) -> None:
    import json

    from mtbert.export import export_model

    metrics_file, params_file = _provenance(args.model)
    metrics_file, params_file = args.metrics or metrics_file, args.params or params_file
    for option, given in (("--metrics", args.metrics), ("--params", args.params)):
        if given is not None and not given.is_file():
            raise DataError(f"{option}: {given}: file not found")
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file else None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError.at(metrics_file, problem=f"not a metrics file ({err})") from None
    params = params_file.read_text(encoding="utf-8") if params_file else None
    tasks = export_model(args.model, args.format, args.output, args.task, args.force, metrics, params)
    print(f"{args.output}: {args.format} export of {args.model} ({', '.join(tasks)})")


def _provenance(model: Path) -> tuple[Path | None, Path | None]:
    """The metrics file and params file of a model folder in the pipeline's layout (``<root>/models/...``)."""
    from mtbert.artifacts import FINETUNE_PREFIX, MULTITASK, Artifacts

    folder = model.resolve()
    parts = folder.parts
    if "models" not in parts:
        return None, None
    at = len(parts) - 1 - parts[::-1].index("models")
    root, rest = Artifacts(Path(*parts[:at])), parts[at + 1 :]
    metrics = None
    if rest == (MULTITASK,):
        metrics = root.metrics("pretrain")
    elif len(rest) == 2 and rest[0].startswith(FINETUNE_PREFIX):
        metrics = root.metrics(f"{rest[0]}/{rest[1]}")
    params = root.root / "params.yaml"
    return (metrics if metrics and metrics.is_file() else None), (params if params.is_file() else None)


def main(argv: list[str] | None = None) -> None:
    """``mtbert <command> ...``; exits with status 2 and one line on stderr on a problem the user can fix."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        import transformers

        transformers.logging.set_verbosity_error()  # the load report of an encoder without its pooler is noise
        transformers.utils.logging.disable_progress_bar()  # loading and saving bars: noise around the one line
        {"predict": predict, "compare": compare, "export": export}[args.command](args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
