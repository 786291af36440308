# Two commands matter on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench bench-cost lint format clean calibrate

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'
	touch $@

demo: $(BIN)/.installed  ## seed SQLite, start the emulator, run the DAG for one day, print the scores
	$(BIN)/judgeflow demo

test: $(BIN)/.installed  ## the whole test suite (unit, DAG, integration on SQLite, Postgres, Redis)
	$(BIN)/pytest

bench: $(BIN)/.installed  ## throughput at the emulator's rate limit vs a 10-thread baseline (N=5000; N=... to change)
	$(BIN)/judgeflow bench --n $(or $(N),5000)

bench-cost: $(BIN)/.installed  ## dollars per 1,000 responses: usual vs realtime and batch with caching
	$(BIN)/judgeflow bench-cost

lint: $(BIN)/.installed
	$(BIN)/ruff check plugins dags tests
	$(BIN)/ruff format --check plugins dags tests
	$(BIN)/mypy

format: $(BIN)/.installed
	$(BIN)/ruff format plugins dags tests
	$(BIN)/ruff check --fix plugins dags tests

clean:
	rm -rf $(VENV) .judgeflow

calibrate: $(BIN)/.installed  ## judge the rubric's golden set, print the agreement table (RUBRIC=... to choose)
	$(BIN)/judgeflow calibrate $(if $(RUBRIC),--rubric $(RUBRIC))

.PHONY: bench-ui
bench-ui: $(BIN)/.installed  ## the UI view's page, chart and JSON times at 10k, 100k and 1M scores in PostgreSQL
	$(BIN)/judgeflow bench-ui

# --- scale: the distributed topology (docker-compose.yaml), verified natively -----------------
.PHONY: stack-test

stack-test: $(BIN)/.installed  ## the DAG + a 3-day backfill on CeleryExecutor: Postgres, Redis, 2 workers (~3 min)
	$(BIN)/judgeflow stack-test
