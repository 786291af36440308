"""The same DAG on the production stack: PostgreSQL warehouse, Redis cache, Slack webhook.

Each test gets its own PostgreSQL schema and its own texts (a nonce in every question), so reruns
on the same servers never see an earlier run's rows or cached verdicts. Slack is a local HTTP
receiver whose payloads are asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from judgeflow.config import SourceConfig
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.conftest import POSTGRES_URL, REDIS_ADDRESS, anthropic_connection, require_tcp
from tests.support.dag_runs import deploy, run_dag, write_settings
from tests.support.postgres import schema_engine, throwaway_schema
from tests.support.warehouse_checks import outcome_counts, run_row

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def schema() -> Iterator[str]:
    with throwaway_schema("jf_test") as name:
        yield name


@pytest.fixture
def warehouse(schema: str) -> Iterator[Engine]:
    engine = schema_engine(schema)
    yield engine
    engine.dispose()


def postgres_connection(schema: str) -> str:
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": 5432,
            "login": "postgres",
            "schema": "test",
            "extra": {"sqlalchemy_url": f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"},
        }
    )


def with_nonce(rows: Iterator[dict[str, Any]], nonce: str) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield {**row, "question": f"{row['question']} (ticket {nonce})"}


def with_quality_drop(rows: Iterator[dict[str, Any]], topics: set[str]) -> Iterator[dict[str, Any]]:
    for row in rows:
        if row["topic"] in topics and row["response"]:
            row = {**row, "response": row["response"] + " [[quality:low]]"}
        yield row


def test_postgres_redis_and_slack_end_to_end(
    tmp_path, airflow_db, warehouse: Engine, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    require_tcp("Redis", REDIS_ADDRESS)
    nonce = secrets.token_hex(6)
    baseline = generate_responses(count=140, end=RUN_DATE - DAY, days=7, seed=21, first_id=1000)
    today = generate_responses(count=40, end=RUN_DATE, days=1, seed=22, first_id=5000)
    seed_warehouse(warehouse, with_nonce((r for r in baseline if r["id"] >= 1005), nonce))
    seed_warehouse(
        warehouse,
        with_nonce(with_quality_drop((r for r in today if r["id"] >= 5005), {"shipping", "billing"}), nonce),
    )
    Warehouse(warehouse, SourceConfig()).upgrade_schema()  # `judgeflow db upgrade`, once per release
    # a one-day drop pages at once here: the alert lifecycle (open_after_days) is test_alert_timeline.py's
    deploy(monkeypatch, write_settings(tmp_path, batching={"batch_size": 50}, alerts={"open_after_days": 1}))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", postgres_connection(schema))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_CACHE", "redis://127.0.0.1:6379/0")

    with SlackReceiver() as slack, EmulatorServer(EmulatorConfig(latency_median_s=0.005)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slack.url))
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        first = run_dag(RUN_DATE)
        payloads = slack.wait_for(1, timeout=5)
        requests_after_first = emulator.stats()["requests_total"]
        rerun = run_dag(RUN_DATE, conf={"rescore": True})
        requests_after_rescore = emulator.stats()["requests_total"]

    assert first.state == "success", first.task_states
    assert len(first.states_of("score_batch")) == 4, "170 responses in batches of 50"
    assert outcome_counts(warehouse, first.run_id) == {
        "staged": 170,
        "scored": 170,
        "errored": 0,
        "both": 0,
        "neither": 0,
    }
    summary = run_row(warehouse, first.run_id)
    assert (summary["extracted"], summary["scored"], summary["unaccounted"]) == (170, 170, 0)

    assert len(payloads) == 1, "one alert for the run, no failure notifications"
    message = json.dumps(payloads[0])
    assert "overall" in message and "regression" in message.lower()
    assert "llm_judge_daily" in message
    assert any(block.get("type") == "header" for block in payloads[0]["blocks"])

    assert rerun.state == "success", rerun.task_states
    again = run_row(warehouse, rerun.run_id)
    assert (again["extracted"], again["scored"], again["from_cache"]) == (35, 35, 35), "Redis served them"
    assert requests_after_rescore == requests_after_first
    with warehouse.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM judge_scores")).scalar_one() == 170


def test_unreachable_redis_means_uncached_not_failed(
    tmp_path, airflow_db, warehouse: Engine, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    seed_warehouse(
        warehouse,
        with_nonce(
            (r for r in generate_responses(count=25, end=RUN_DATE, seed=23) if r["id"] > 5),
            secrets.token_hex(6),
        ),
    )
    Warehouse(warehouse, SourceConfig()).upgrade_schema()
    deploy(monkeypatch, write_settings(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", postgres_connection(schema))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_CACHE", "redis://127.0.0.1:1/0")

    with EmulatorServer(EmulatorConfig(latency_median_s=0.005)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE)

    assert result.state == "success", result.task_states
    assert outcome_counts(warehouse, result.run_id)["scored"] == 20
