"""Scoring at scale, under stress: faults, a budget cap, and one rate limit shared by two tasks.

All against the emulator over HTTP; the shared limit uses the real Redis at 127.0.0.1:6379.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from judgeflow.config import Settings
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import REDIS_ADDRESS, anthropic_connection, require_tcp, sqlite_connection
from tests.support.dag_runs import deploy, run_dag, write_settings
from tests.support.warehouse_checks import count, outcome_counts, run_row

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def unique_rows(count_: int, seed: int) -> Any:
    nonce = secrets.token_hex(4)
    for row in generate_responses(count=count_ + 5, end=RUN_DATE, seed=seed):
        if row["id"] > 5:
            yield {**row, "question": f"{row['question']} #{nonce}-{row['id']}"}


def test_faults_and_a_budget_cap_lose_nothing_and_overspend_at_most_the_requests_in_flight(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    seed_warehouse(engine, unique_rows(300, seed=31))
    cap, concurrency = 0.20, 8
    settings = write_settings(
        tmp_path,
        judge={
            "concurrency": concurrency,
            "request_timeout_s": 0.5,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
        },
        budget={"max_cost_usd_per_run": cap},
    )
    deploy(monkeypatch, settings)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))
    faults = EmulatorConfig(
        latency_median_s=0.005,
        rate_429=0.20,
        rate_529=0.05,
        rate_500=0.02,
        rate_hang=0.01,
        hang_seconds=1.5,
        rate_malformed=0.05,
        seed=7,
    )
    with EmulatorServer(faults) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE)
        stats = emulator.stats()

    assert result.state == "success", result.task_states
    outcomes = outcome_counts(engine, result.run_id)
    assert outcomes["staged"] == 300
    assert outcomes["neither"] == 0 and outcomes["both"] == 0, outcomes
    duplicated = (
        "SELECT COUNT(*) FROM (SELECT response_id FROM judge_scores GROUP BY response_id HAVING COUNT(*) > 1) AS d"
    )
    assert count(engine, duplicated) == 0
    summary = run_row(engine, result.run_id)
    details = summary["details"] if isinstance(summary["details"], dict) else json.loads(summary["details"])
    assert details["left_for_budget"] > 0, "the cap was reached"
    assert details["retries"] > 0 and stats["faults"]["429"] > 0
    price = Settings().price_for("claude-haiku-4-5")
    largest_request = (3_000 * price.input + 1_024 * price.output) / 1_000_000
    assert summary["cost_usd"] <= cap + concurrency * largest_request
    with engine.connect() as conn:
        kinds = dict(conn.exec_driver_sql("SELECT kind, COUNT(*) FROM judge_errors GROUP BY kind").all())
        retryable = (
            conn.exec_driver_sql("SELECT DISTINCT retryable FROM judge_errors WHERE kind = 'budget_exhausted'")
            .scalars()
            .all()
        )
    assert kinds["budget_exhausted"] == details["left_for_budget"]
    assert retryable == [True], "what the budget held back is picked up by the next run"


def score_one_batch(job: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    """A mapped score task in its own process, the way a worker runs it."""
    from types import SimpleNamespace

    from judgeflow.tasks import pipeline

    settings, batch, run_id = job
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=run_id, run_after=RUN_DATE)
    return pipeline.score_batch(settings, batch, {"dag_run": dag_run, "logical_date": RUN_DATE, "params": {}})


def test_two_score_tasks_sharing_the_redis_limiter_stay_under_the_api_limit(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from judgeflow.tasks import pipeline

    require_tcp("Redis", REDIS_ADDRESS)
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    seed_warehouse(engine, unique_rows(160, seed=32))
    settings = write_settings(
        tmp_path,
        judge={"concurrency": 16},
        batching={"batch_size": 80},
        limits={"requests_per_minute": 1200},
    )
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_CACHE", "redis://127.0.0.1:6379/0")
    run_id = f"limiter_{secrets.token_hex(4)}"
    context = {
        "dag_run": SimpleNamespace(dag_id="llm_judge_daily", run_id=run_id, run_after=RUN_DATE),
        "logical_date": RUN_DATE,
        "params": {},
    }
    with EmulatorServer(EmulatorConfig(latency_median_s=0.2, requests_per_minute=1200)) as emulator:
        monkeypatch.setenv(
            "AIRFLOW_CONN_ANTHROPIC_DEFAULT",
            anthropic_connection(emulator.url, key=f"k-{secrets.token_hex(4)}"),
        )
        batches = pipeline.extract_responses(str(settings), context)
        assert len(batches) == 2
        with ProcessPoolExecutor(max_workers=2, mp_context=get_context("spawn")) as pool:
            totals = list(pool.map(score_one_batch, [(str(settings), b, run_id) for b in batches]))
        stats = emulator.stats()

    assert sum(t["scored"] for t in totals) == 160
    assert all(t["max_in_flight"] > 1 for t in totals), "both tasks ran concurrently"
    assert stats["rate_limited"] == 0, f"the shared limiter kept both tasks under 1200/min: {stats['by_status']}"
    assert stats["requests_total"] == 160
