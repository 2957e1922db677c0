# The two commands: `make demo` and `make test`. Both create (or reuse) .venv inside the repo.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.maskedu-installed

.PHONY: demo test lab install clean-data

# course/constraints.txt pins every package at the version the course is tested with (maskedu course constraints)
$(STAMP): pyproject.toml course/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' -c course/constraints.txt
	@touch $(STAMP)

install: $(STAMP)

## Build the embedded sample dataset and execute every notebook headlessly (copies land in data/executed/).
## MASKEDU_STRICT=1: a claim a notebook makes that its own run contradicts stops the run.
demo: $(STAMP)
	MASKEDU_STRICT=1 $(PY) -m maskedu demo

## pytest over tests/, the docstring examples in maskedu/, and nbval over every notebook, in fast mode
## (strict for the notebooks: the docstring examples and unit tests show contradicted claims on purpose).
test: $(STAMP)
	MASKEDU_FAST=1 $(PY) -m pytest maskedu --doctest-modules -p no:cacheprovider
	MASKEDU_STRICT=1 MASKEDU_FAST=1 $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

## Open the notebooks in JupyterLab.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-data:
	find data -mindepth 1 ! -name README.md -exec rm -rf {} +
