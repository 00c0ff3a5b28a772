# Two commands do all the set-up: `make demo` (main job) and `make test` (test suite).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test env clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

env: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/snakemake --cores 2 --keep-going

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .snakemake
