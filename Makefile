# Two commands matter on a fresh machine: `make demo` and `make test`. Both create .venv first,
# installing exactly the versions in constraints.txt (`make lock` refreshes it).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
LOCK   := constraints.txt
UV_VERSION := 0.13.9

.PHONY: demo ui test lint format docs lock clean bench bench-cost bench-ui bench-warehouse bench-parse bench-alerts calibrate mutate stack-test

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/.installed: $(BIN)/uv pyproject.toml devkit/pyproject.toml $(LOCK)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c $(LOCK) -e '.[dev]'
	touch $@

demo: $(BIN)/.installed  ## seed SQLite, start the emulator, run each example suite's DAG for one day, print the scores
	$(BIN)/judgeflow-dev demo

AXE := devkit/browser/node_modules/axe-core/axe.min.js

# axe-core for the UI view's accessibility check, from the npm registry at the version the lock file pins.
$(AXE): devkit/browser/package.json devkit/browser/package-lock.json
	cd devkit/browser && npm ci --no-audit --no-fund --silent
	touch $@

ui: $(BIN)/.installed  ## Airflow's api-server with the judgeflow view on make demo's data; prints where and the login
	$(BIN)/judgeflow-dev ui $(if $(PORT),--port $(PORT))

test: $(BIN)/.installed $(AXE)  ## the whole test suite (unit, DAG, deploy, integration, the Celery stack)
	$(BIN)/pytest

lint: $(BIN)/.installed  ## ruff, mypy and the import contracts (the architecture)
	$(BIN)/ruff check plugins dags devkit tests
	$(BIN)/ruff format --check plugins dags devkit tests
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(BIN)/.installed
	$(BIN)/ruff format plugins dags devkit tests
	$(BIN)/ruff check --fix plugins dags devkit tests

docs: $(BIN)/.installed  ## build the documentation site (docs/) with --strict into .judgeflow/site
	$(BIN)/mkdocs build --strict --site-dir .judgeflow/site

lock: $(BIN)/uv  ## re-resolve constraints.txt after a dependency change in pyproject.toml or devkit/
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--no-emit-package judgeflow-devkit --no-header --quiet -o $(LOCK)

clean:
	rm -rf $(VENV) .judgeflow

bench: $(BIN)/.installed  ## throughput at the emulator's rate limit vs a 10-thread baseline (N=5000; N=... to change)
	$(BIN)/judgeflow-dev bench --n $(or $(N),5000)

bench-cost: $(BIN)/.installed  ## dollars per 1,000 responses, Haiku 4.5 and 5.5: usual vs realtime and batch with caching
	$(BIN)/judgeflow-dev bench-cost

bench-ui: $(BIN)/.installed  ## the UI view's page, chart and JSON times at 10k, 100k and 1M scores in PostgreSQL
	$(BIN)/judgeflow-dev bench-ui

bench-warehouse: $(BIN)/.installed  ## stage and read a 1,000,000-row day on PostgreSQL and DuckDB: seconds, peak memory
	$(BIN)/judgeflow-dev bench-warehouse

bench-parse: $(BIN)/.installed  ## the DAG files' parse time with 50 suites vs 1 (SUITES=... to change)
	$(BIN)/judgeflow-dev bench-parse --suites $(or $(SUITES),50)

bench-alerts: $(BIN)/.installed  ## share of 200 null 28-day timelines with any alert, open_after_days 1 vs the default
	$(BIN)/judgeflow-dev bench-alerts --timelines $(or $(TIMELINES),200) --per-day $(or $(PER_DAY),50)

calibrate: $(BIN)/.installed  ## judge the rubric's golden set with the emulator, print the table (RUBRIC=...)
	$(BIN)/judgeflow-dev calibrate --emulator $(if $(RUBRIC),--rubric $(RUBRIC))

mutate: $(BIN)/.installed  ## mutation testing of the promise modules, survivors per module (MODULE=judging/verdict.py for one)
	$(BIN)/judgeflow-dev mutate --max-children $(or $(MAX_CHILDREN),2) $(if $(MODULE),--module $(MODULE))

stack-test: $(BIN)/.installed  ## two suites at once + a 3-day backfill on CeleryExecutor: Postgres, Redis, 2 workers (~5 min)
	$(BIN)/judgeflow-dev stack-test
