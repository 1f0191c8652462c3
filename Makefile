# The two commands a new user needs: `make repro` and `make test`. Both create the venv when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data

# Nothing downloads at run time: models come from a package or a local folder, data from DATA.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
# Stages run `python stages/...`: the venv must come first on PATH for dvc to find it.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: install data browser repro test test-slow lint bench mutate mutate-training dvc-yaml clean

install: $(VENV)/.installed

# requirements.lock pins every package (torch==2.13.0 takes the CPU wheel); the project itself goes in editable.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# data/raw -> the raw CSV folder (DATA=<folder> to use your own).
data:
	@test -d "$(DATA)" || { echo "error: raw data folder '$(DATA)' not found; run 'make repro DATA=<folder>'" >&2; exit 2; }
	@mkdir -p data
	@ln -sfn "$$(cd "$(DATA)" && pwd)" data/raw
	@echo "data/raw -> $$(readlink data/raw)"

repro: install data
	$(VENV)/bin/dvc repro

# tests/e2e/test_report.py opens the report in Debian's chromium (playwright drives it; nothing is downloaded).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
	  || echo "warning: no chromium (apt-get install chromium): the report-page tests will be skipped" >&2

test: install browser
	$(PY) -m pytest -m "not slow" -q

test-slow: install browser
	$(PY) -m pytest -m slow -q

lint: install
	$(VENV)/bin/ruff check src stages tests bench tools
	$(VENV)/bin/ruff format --check src stages tests bench tools

bench: install data
	$(VENV)/bin/dvc repro prepare
	$(PY) bench/grad_step.py
	$(PY) bench/ddp_step.py
	$(PY) bench/throughput.py

# Mutation testing of the modules where a silent error changes results ([tool.mutmut] in pyproject.toml); not in CI
# (docs/testing.md: the scores, the time it takes, every surviving mutant). `mutmut results` lists the survivors,
# `mutmut show <name>` one of them.
mutate: install
	$(VENV)/bin/mutmut run --max-children 2
	$(PY) bench/mutation_scores.py --markdown

# The training loop's mutants, in a folder of their own (.mutants-training/): its tests run tiny trainings, minutes
# per surviving mutant. GLOBS='mtbert.training.x_lr_factor*' runs some of them (tools/mutate_training.py).
mutate-training: install
	$(PY) tools/mutate_training.py $(GLOBS)
	$(PY) bench/mutation_scores.py --markdown --folder .mutants-training/mutants

# dvc.yaml's generated parts: each stage's code deps (what its script imports), artifacts: and plots: (the tasks and
# seeds of params.yaml). tests/test_dvc_yaml.py fails until this has been run after such a change.
dvc-yaml: install
	$(PY) tools/dvc_yaml.py

clean:
	rm -rf $(VENV)
