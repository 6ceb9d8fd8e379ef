# Everything a fresh machine needs is installed from here (pyproject.toml), into .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test bench clean notebook browser

$(BIN)/screening: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0  # the CPU wheel, before anything can pull a CUDA build
	$(BIN)/pip install --quiet -e '.[test,ml]'
	touch $(BIN)/screening

setup: $(BIN)/screening

# The main job: the default screen through the Snakemake workflow -> results/default/
# (rankings.parquet/csv, provenance.json, plots/, report.html). A second run does nothing.
run: setup
	$(BIN)/snakemake --profile workflows/profiles/local

# Two pytest workers, one per core, a test file each at a time (a file's module fixtures, such as the
# Slurm cluster's, stay in one worker): much of the suite waits on subprocesses, Slurm and the browser.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# Headless Chromium and its WebDriver (Debian's chromium, chromium-driver) for the browser tests of
# report.html (tests/test_report_browser.py, selenium); without them those tests skip, unless CI is set.
# apt-get needs root: run as root or with sudo rights.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "chromium and chromedriver are installed"; \
	else \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# The rankings notebook in Jupyter (the `notebook` extra, installed on first use); it opens the demo
# run's results/demo/ unless SCREENING_RUN_DIR names another run folder.
$(BIN)/jupyter-lab: $(BIN)/screening
	$(BIN)/pip install --quiet -e '.[notebook]'
	touch $(BIN)/jupyter-lab

notebook: $(BIN)/jupyter-lab
	$(BIN)/jupyter lab workflows/notebooks/rankings.ipynb

bench: setup
	$(BIN)/python benchmarks/bench_pair.py
	$(BIN)/python benchmarks/bench_screen.py

clean:
	rm -rf $(VENV) .pytest_cache
