# Everything a fresh machine needs is installed from here (pyproject.toml), into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test bench clean

$(BIN)/screening: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/screening

setup: $(BIN)/screening

run: setup
	$(BIN)/screening screen --out results/default

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_pair.py

clean:
	rm -rf $(VENV) .pytest_cache
