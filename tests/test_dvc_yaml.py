"""dvc.yaml: each stage depends on exactly the code it imports, and every stage waits for ``validate``.

A stage's code is what its script loads: the script is imported (not run) in a fresh interpreter as
``python stages/<name>.py`` would start it, and every loaded module under ``src/mtbert`` or ``stages`` must be
covered by a dep of the stage (the file itself, or a folder holding it). Conversely every code dep must be used: a
file dep must be loaded, and a folder dep must hold loaded modules only (a folder with one module the stage does not
import would rerun the stage for nothing). Data and model deps are not checked here. ``${...}`` is resolved from
``params.yaml``, and ``foreach``/``matrix`` are expanded, as DVC does.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import posixpath
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

VALIDATE_OUT = "data/validated.txt"


def _load_tool():
    spec = importlib.util.spec_from_file_location("dvc_yaml_tool", ROOT / "tools" / "dvc_yaml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _load_tool()  # tools/dvc_yaml.py: `make dvc-yaml`, which writes the generated parts of dvc.yaml
CODE_DIRS = TOOL.CODE_DIRS

_VAR = re.compile(r"\$\{\s*([^}\s]+)\s*\}")


def _lookup(context: dict, dotted: str) -> Any:
    value: Any = context
    for part in dotted.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def _resolve(value: Any, context: dict) -> Any:
    """``value`` with every ``${a.b}`` replaced; a string that is one ``${...}`` becomes the value itself (a list)."""
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole:
            return _lookup(context, whole[1])
        return _VAR.sub(lambda m: str(_lookup(context, m[1])), value)
    if isinstance(value, list):
        return [_resolve(v, context) for v in value]
    if isinstance(value, dict):
        return {_resolve(k, context): _resolve(v, context) for k, v in value.items()}
    return value


def expand_stages(dvc_yaml: dict, params: dict) -> dict[str, dict]:
    """Every stage by its DVC name (``finetune@sst-1``): ``foreach``/``matrix`` expanded, templating resolved."""
    assert "vars" not in dvc_yaml, "dvc.yaml has vars: resolve them here too"
    stages: dict[str, dict] = {}
    for name, definition in dvc_yaml["stages"].items():
        if "foreach" in definition:
            items = _resolve(definition["foreach"], params)
            pairs = items.items() if isinstance(items, dict) else ((str(i), i) for i in items)
            for key, item in pairs:
                stages[f"{name}@{key}"] = _resolve(definition["do"], {**params, "key": key, "item": item})
        elif "matrix" in definition:
            axes = {axis: _resolve(values, params) for axis, values in definition["matrix"].items()}
            body = {k: v for k, v in definition.items() if k != "matrix"}
            for combination in itertools.product(*axes.values()):
                item = dict(zip(axes, combination, strict=True))
                key = "-".join(map(str, combination))
                stages[f"{name}@{key}"] = _resolve(body, {**params, "item": item})
        else:
            stages[name] = _resolve(definition, params)
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, dict]:
    dvc_yaml = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    return expand_stages(dvc_yaml, params)


def _script(cmd: str) -> str:
    """``stages/x.py`` from ``python stages/x.py args``."""
    words = shlex.split(cmd)
    assert len(words) >= 2 and re.fullmatch(r"python3?", words[0]) and words[1].endswith(".py"), (
        f"cmd {cmd!r}: expected 'python <script>.py [args]'"
    )
    return posixpath.normpath(words[1])


def _loaded_code(scripts: set[str]) -> dict[str, set[str]]:
    """Per script, the files under src/ and stages/ (relative to the repo) that importing it loads."""
    return TOOL.loaded_code(scripts, ROOT)


def _covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep + "/")


def _code_deps(stage: dict) -> list[str]:
    deps = [posixpath.normpath(d) for d in stage.get("deps", []) if not os.path.isabs(d)]
    return [d for d in deps if any(_covers(c, d) for c in CODE_DIRS)]


def _modules_under(folder: str) -> set[str]:
    return TOOL.modules_under(folder, ROOT)


def test_every_stage_depends_on_exactly_the_code_it_imports(stages):
    scripts = {name: _script(stage["cmd"]) for name, stage in stages.items()}
    loaded = _loaded_code(set(scripts.values()))
    problems = []
    for name, stage in stages.items():
        used = loaded[scripts[name]] | {scripts[name]}
        deps = _code_deps(stage)
        missing = sorted(f for f in used if not any(_covers(d, f) for d in deps))
        unused = [d for d in deps if not any(_covers(d, f) for f in used)]
        too_broad = {
            d: sorted(_modules_under(d) - used) for d in deps if (ROOT / d).is_dir() and _modules_under(d) - used
        }
        if missing or unused or too_broad:
            lines = [f"{name} ({scripts[name]}):"]
            lines += [f"  missing dep: {f}" for f in missing]
            lines += [f"  unused dep:  {d} (loads nothing from it)" for d in unused if d not in too_broad]
            lines += [f"  too broad:   {d} (does not load {', '.join(fs)})" for d, fs in too_broad.items()]
            problems.append("\n".join(lines))
    if problems:
        pytest.fail("dvc.yaml code deps differ from what each stage imports:\n" + "\n".join(problems), pytrace=False)


def test_dvc_yaml_is_what_make_dvc_yaml_writes(stages):
    """The generated parts (code deps, artifacts, plots) are up to date: ``make dvc-yaml`` would change nothing."""
    from mtbert.config import load_config

    text = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    loaded = _loaded_code({_script(stage["cmd"]) for stage in stages.values()})
    new = TOOL.render(text, load_config(ROOT / "params.yaml"), loaded, ROOT)
    assert new == text, "dvc.yaml differs from what `make dvc-yaml` writes: run it and review the change"


def test_make_dvc_yaml_writes_each_stages_imports_and_the_tasks_curves(tmp_path):
    """The generator itself: a stage that imports one more module gets it as a dep; a folder whose every module is
    loaded is one dep; a fourth task gets its artifacts and curves; hand-written lines stay as they are."""
    from mtbert.config import config_from_dict

    (tmp_path / "src/pkg/sub").mkdir(parents=True)
    for name in ("a.py", "b.py", "sub/x.py", "sub/y.py"):
        (tmp_path / "src/pkg" / name).write_text("")
    (tmp_path / "stages").mkdir()
    text = "stages:\n  s:\n    cmd: python stages/s.py\n    deps:\n      - data/in\n      - src/pkg/a.py  \n"
    text += "      - ${data.prepared_dir}\n    outs:\n      - out   # kept\n" + TOOL.TAIL_MARK + "\nold\n"
    loaded = {"stages/s.py": {"stages/_r.py", "src/pkg/a.py", "src/pkg/b.py", "src/pkg/sub/x.py", "src/pkg/sub/y.py"}}
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["tasks"] = [*params["tasks"], "sst2"]
    params["task_defs"]["sst2"] = {
        **params["task_defs"]["sst"],
        "class_names": [],
        "label": {"column": "s", "min": 0, "max": 1},
    }
    for key in ("heads", "task_ratio", "multipliers", "loss_weights"):
        section = "model" if key == "heads" else "train"
        params[section][key]["sst2"] = params[section][key]["sst"]
    params["finetune"]["seeds"], params["ensemble"]["members"] = [7], ["finetune-7"]
    out = TOOL.render(text, config_from_dict(params), loaded, tmp_path).splitlines()
    deps = out[out.index("    deps:") + 1 : out.index("    outs:")]
    assert deps == [
        "      - data/in",
        "      - stages/s.py",
        "      - stages/_r.py",
        "      - src/pkg/a.py",
        "      - src/pkg/b.py",
        "      - src/pkg/sub",
        "      - ${data.prepared_dir}",
    ]
    assert "      - out   # kept" in out and "old" not in out
    tail = yaml.safe_load("\n".join(out[out.index("artifacts:") :]))
    assert sorted(tail["artifacts"]) == [
        "multitask",
        "para-finetune-7",
        "sst-finetune-7",
        "sst2-finetune-7",
        "sts-finetune-7",
    ]
    assert tail["artifacts"]["sst2-finetune-7"]["path"] == "models/finetune-7/sst2"
    curves = {title: plot["y"] for entry in tail["plots"] for title, plot in entry.items()}
    assert curves["finetune sst2 dev sst2_acc"] == {"dvclive/finetune-7/sst2/plots/metrics/sst2_acc.tsv": "sst2_acc"}
    assert (
        "dvclive/pretrain/plots/metrics/steps/grad/cos_sts_sst2.tsv" in curves["pretrain gradient cosine per task pair"]
    )


def test_stage_names_match_dvc(stages):
    """The expansion above is DVC's: same stage names as ``dvc stage list``."""
    dvc = Path(sys.executable).parent / "dvc"
    result = subprocess.run(
        [str(dvc), "stage", "list", "--all", "--name-only"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert sorted(result.stdout.split()) == sorted(stages)


def test_validate_runs_first_and_checks_every_key(stages):
    validate = stages["validate"]
    assert validate["params"] == [{"params.yaml": None}], "validate must track all of params.yaml (no key list)"
    assert validate["outs"] == [{VALIDATE_OUT: {"persist": True}}], "validate's mark must survive a failed run"
    late = [name for name, stage in stages.items() if name != "validate" and VALIDATE_OUT not in stage.get("deps", [])]
    assert not late, f"these stages do not depend on {VALIDATE_OUT}, so DVC may run them before validate: {late}"


def test_stages_that_build_tasks_from_the_params_list_task_defs(stages):
    """A stage whose script builds its tasks from the params (``cfg.task_specs``) reads their definitions: it lists
    ``task_defs``, or, in a stage per task, that task's entry alone (``task_defs.sst``), so that another task's
    definition does not rerun it. A stage that does not must not list them (``predict`` reads the definitions saved
    with its models)."""
    for name, stage in stages.items():
        if name == "validate":  # tracks the whole file
            continue
        keys = [p for p in stage.get("params", []) if isinstance(p, str) and p.split(".")[0] == "task_defs"]
        if "task_specs(" in (ROOT / _script(stage["cmd"])).read_text(encoding="utf-8"):
            task = name.partition("@")[2].rsplit("-", 1)[0] if name.startswith("finetune@") else name.partition("@")[2]
            expected = [f"task_defs.{task}"] if task else ["task_defs"]
            assert keys == expected, f"{name}: lists {keys}, expected {expected}"
        else:
            assert not keys, f"{name}: lists {keys} but its script builds no task from the params"


def test_artifacts_are_exactly_the_models_the_stages_write(stages):
    """``artifacts:`` names every trained model (a stage output under ``models/``), and nothing else, as a model
    with its task and member among its labels."""
    artifacts = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    outs = {
        (next(iter(out)) if isinstance(out, dict) else out).split("#")[0].strip()
        for stage in stages.values()
        for out in stage.get("outs", [])
    }
    models = {out for out in outs if out.startswith("models/")}
    assert sorted(a["path"] for a in artifacts.values()) == sorted(models)
    for name, artifact in artifacts.items():
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) and artifact["type"] == "model"
        member = artifact["path"].split("/")[1]
        task = artifact["path"].split("/")[2] if member != "multitask" else "sst"
        assert f"member-{member}" in artifact["labels"] and task in artifact["labels"] and artifact["desc"]
