"""Nothing is paid twice and nothing is lost without being counted, through the real task functions.

- A score task retried in the same run (Airflow's retry, a cleared task) judges nothing again: its
  batch read leaves out what this run already scored, so requests and the stored cost stay put.
- A staged response that ends with neither a score nor an error is counted as ``unaccounted`` in
  ``judge_runs`` and the summary logs an error: a loss is never silent.

The judge is the emulator over HTTP; the warehouse an embedded SQLite file; the cache is off, so a
second judgement could not hide behind a cache hit.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from judgeflow.tasks import pipeline
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import write_settings
from tests.support.warehouse_checks import run_row

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def run_context(run_id: str) -> dict[str, Any]:
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=run_id, run_after=RUN_DATE)
    return {"dag_run": dag_run, "logical_date": RUN_DATE, "params": {}}


@pytest.fixture
def setup(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Engine, Any]]:
    path = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    nonce = secrets.token_hex(4)
    rows = generate_responses(count=25, end=RUN_DATE, seed=51)
    seed_warehouse(engine, ({**r, "question": f"{r['question']} #{nonce}"} for r in rows if r["id"] > 5))
    settings = write_settings(tmp_path, cache={"enabled": False}, batching={"batch_size": 10})
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(path))
    with EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        yield str(settings), engine, emulator
    engine.dispose()


def stored_scores(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        query = "SELECT response_id, cost_usd, dag_run_id, scored_at FROM judge_scores ORDER BY response_id"
        return [tuple(r) for r in conn.execute(text(query))]


def test_a_score_task_retried_in_the_same_run_judges_nothing_again(setup: tuple[str, Engine, Any]) -> None:
    settings, engine, emulator = setup
    run_id = f"retry_{secrets.token_hex(3)}"
    batches = pipeline.extract_responses(settings, run_context(run_id))
    assert len(batches) == 2

    first = pipeline.score_batch(settings, batches[0], run_context(run_id))
    requests = emulator.stats()["requests_total"]
    before = stored_scores(engine)
    again = pipeline.score_batch(settings, batches[0], run_context(run_id))  # the retry

    assert first["scored"] == first["requests"] == requests == 10
    assert (again["items"], again["requests"]) == (0, 0)
    assert emulator.stats()["requests_total"] == requests, "no request the second time"
    assert stored_scores(engine) == before, "the rows keep their cost, run id and time"
    assert all(cost > 0 and dag_run_id == run_id for _, cost, dag_run_id, _ in before)


def test_a_lost_response_is_counted_as_unaccounted_and_logged(
    setup: tuple[str, Engine, Any], records_of: Callable[[str], list[logging.LogRecord]]
) -> None:
    settings, engine, _ = setup
    run_id = f"loss_{secrets.token_hex(3)}"
    log = records_of("judgeflow.tasks.pipeline")
    batches = pipeline.extract_responses(settings, run_context(run_id))
    results = [pipeline.score_batch(settings, batch, run_context(run_id)) for batch in batches]
    with engine.begin() as conn:  # the loss: one stored verdict vanishes before the summary
        lost = conn.execute(text("SELECT MIN(response_id) FROM judge_scores")).scalar_one()
        conn.execute(text("DELETE FROM judge_criterion_scores WHERE response_id = :id"), {"id": lost})
        conn.execute(text("DELETE FROM judge_scores WHERE response_id = :id"), {"id": lost})

    summary = pipeline.summarize_run(settings, results, run_context(run_id))["rubrics"]["helpfulness"]

    assert (summary["extracted"], summary["scored"], summary["errors"]) == (20, 19, 0)
    assert summary["unaccounted"] == 1
    assert run_row(engine, run_id)["unaccounted"] == 1
    errors = [r.getMessage() for r in log if r.levelno == logging.ERROR]
    assert errors == ["helpfulness: 1 staged responses have neither a score nor an error row"]
