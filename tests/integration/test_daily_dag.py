"""The real DAG, end to end on the embedded default: SQLite warehouse, emulator, embedded cache.

Each test runs ``dag.test()`` in-process against the emulator over HTTP and asserts run and
task states (``dag.test()`` does not raise when a task fails) and what is in the warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from judgeflow.rubric import load_rubric
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer, emulated_scores
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import ROOT, deploy, run_dag, write_settings
from tests.support.warehouse_checks import count, outcome_counts, run_row

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)  # judges 2026-11-19
DAY = dt.timedelta(days=1)


@dataclass
class Env:
    engine: Engine
    folder: Path
    emulator: EmulatorServer


@pytest.fixture
def env(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    deploy(monkeypatch, write_settings(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))
    with EmulatorServer(EmulatorConfig(latency_median_s=0.005)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        yield Env(engine, tmp_path, emulator)
    engine.dispose()


def assert_succeeded(result) -> None:  # type: ignore[no-untyped-def]
    assert result.state == "success", result.task_states
    for task_id, states in result.task_states.items():
        assert all(state in ("success", "skipped") for state in states), (task_id, states)


def test_a_day_is_scored_once_and_a_rerun_scores_nothing_new(env: Env) -> None:
    seed_warehouse(env.engine, generate_responses(count=60, end=RUN_DATE, days=1, seed=3))
    late = generate_responses(count=6, end=RUN_DATE - 3 * DAY, days=1, seed=4, first_id=1001)
    seed_warehouse(env.engine, (row for i, row in enumerate(late) if i >= 5))  # ordinary rows only

    first = run_dag(RUN_DATE)

    assert_succeeded(first)
    outcomes = outcome_counts(env.engine, first.run_id)
    assert outcomes == {"staged": 61, "scored": 59, "errored": 2, "both": 0, "neither": 0}
    summary = run_row(env.engine, first.run_id)
    assert (summary["extracted"], summary["scored"], summary["errors"], summary["unaccounted"]) == (61, 59, 2, 0)
    assert summary["from_cache"] >= 5, "one row in ten repeats an earlier answer"
    assert summary["cost_usd"] > 0 and summary["input_tokens"] > 0
    assert count(env.engine, "SELECT COUNT(*) FROM judge_scores WHERE response_id = 1006") == 1, "late row"
    judged_day = (RUN_DATE - DAY).date().isoformat()
    overall_on = "SELECT COALESCE(SUM(n), 0) FROM judge_daily_scores WHERE metric = 'overall'"
    scored_on = "SELECT COUNT(*) FROM judge_scores s JOIN app_responses r ON r.id = s.response_id"
    assert (
        count(env.engine, overall_on + " AND day = :day", day=judged_day)
        == count(env.engine, scored_on + " WHERE date(r.created_at) = :day", day=judged_day)
        > 50
    ), "the view's daily aggregates cover the judged day"
    assert count(env.engine, overall_on) == 59, "and every score the run wrote, the late row's day included"
    requests_after_first = env.emulator.stats()["requests_total"]

    second = run_dag(RUN_DATE)

    assert_succeeded(second)
    assert second.run_id != first.run_id
    assert outcome_counts(env.engine, second.run_id)["staged"] == 0
    assert second.states_of("score_batch") == ["skipped"]
    assert run_row(env.engine, second.run_id)["extracted"] == 0
    assert count(env.engine, "SELECT COUNT(*) FROM judge_scores") == 59
    assert env.emulator.stats()["requests_total"] == requests_after_first


def test_scores_are_the_judges_verdicts_with_per_criterion_rows(env: Env) -> None:
    rows = list(generate_responses(count=30, end=RUN_DATE, days=1, seed=5))
    seed_warehouse(env.engine, iter(rows))

    assert_succeeded(run_dag(RUN_DATE))

    rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
    with env.engine.connect() as conn:
        stored = {
            r.response_id: r.overall
            for r in conn.exec_driver_sql("SELECT response_id, overall FROM judge_scores WHERE NOT truncated")
        }
        criteria = conn.exec_driver_sql(
            "SELECT criterion, score FROM judge_criterion_scores WHERE response_id = 10 ORDER BY criterion"
        ).all()
    plain = [r for r in rows if r["response"] and len(r["response"]) < 1000]
    assert plain, "the generator makes ordinary answers"
    for row in plain:
        expected = rubric.overall(emulated_scores(row["response"], rubric.criterion_names, 1, 5))
        assert stored[row["id"]] == pytest.approx(expected), row["id"]
    expected_10 = emulated_scores(rows[9]["response"], rubric.criterion_names, 1, 5)
    assert dict(criteria) == expected_10


def test_bad_input_loses_nothing(env: Env) -> None:
    """NULL, empty, unicode, far too long and an injection: each ends scored or with an error."""
    seed_warehouse(env.engine, generate_responses(count=10, end=RUN_DATE, days=1, seed=6))

    result = run_dag(RUN_DATE)

    assert_succeeded(result)
    assert outcome_counts(env.engine, result.run_id)["neither"] == 0
    with env.engine.connect() as conn:
        errors = dict(conn.exec_driver_sql("SELECT response_id, kind FROM judge_errors").all())
        truncated = conn.exec_driver_sql("SELECT response_id FROM judge_scores WHERE truncated").scalars().all()
        unicode_scored = conn.exec_driver_sql("SELECT COUNT(*) FROM judge_scores WHERE response_id = 3").scalar()
    assert errors == {1: "invalid_input", 2: "invalid_input"}
    assert truncated == [4]
    assert unicode_scored == 1
    requests = env.emulator.stats()["requests_total"]

    rerun = run_dag(RUN_DATE + dt.timedelta(hours=1))

    assert_succeeded(rerun)
    assert outcome_counts(env.engine, rerun.run_id)["staged"] == 0, "permanent errors are not retried"
    assert env.emulator.stats()["requests_total"] == requests


def test_malformed_verdicts_are_recorded_then_picked_up_by_the_next_run(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    seed_warehouse(engine, (r for r in generate_responses(count=20, end=RUN_DATE, seed=8) if r["id"] > 5))
    deploy(monkeypatch, write_settings(tmp_path))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))

    with EmulatorServer(EmulatorConfig(latency_median_s=0.005, rate_malformed=1.0)) as broken:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(broken.url))
        first = run_dag(RUN_DATE)
        requests = broken.stats()["requests_total"]

    assert_succeeded(first)
    assert outcome_counts(engine, first.run_id) == {"staged": 15, "scored": 0, "errored": 15, "both": 0, "neither": 0}
    with engine.connect() as conn:
        kinds = conn.exec_driver_sql("SELECT DISTINCT kind FROM judge_errors").scalars().all()
        raw = conn.exec_driver_sql("SELECT raw_reply FROM judge_errors LIMIT 1").scalar()
    assert kinds == ["malformed_verdict"]
    assert raw, "the malformed reply is kept for inspection"
    distinct_inputs = count(
        engine,
        "SELECT COUNT(*) FROM (SELECT DISTINCT question, context, response FROM app_responses) AS inputs",
    )
    assert requests == 2 * distinct_inputs, "each malformed verdict is asked for exactly once more"

    with EmulatorServer(EmulatorConfig(latency_median_s=0.005)) as healthy:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(healthy.url))
        second = run_dag(RUN_DATE + dt.timedelta(hours=1))

    assert_succeeded(second)
    assert outcome_counts(engine, second.run_id) == {"staged": 15, "scored": 15, "errored": 0, "both": 0, "neither": 0}
    assert count(engine, "SELECT COUNT(*) FROM judge_errors") == 0, "a later score clears the error row"


def test_rescore_param_judges_the_interval_again_from_the_cache(env: Env) -> None:
    seed_warehouse(env.engine, (r for r in generate_responses(count=25, end=RUN_DATE, seed=9) if r["id"] > 5))
    first = run_dag(RUN_DATE)
    assert_succeeded(first)
    requests = env.emulator.stats()["requests_total"]

    again = run_dag(RUN_DATE + dt.timedelta(minutes=5), conf={"rescore": True, "limit": 10})

    assert_succeeded(again)
    summary = run_row(env.engine, again.run_id)
    assert (summary["extracted"], summary["scored"], summary["from_cache"]) == (10, 10, 10)
    assert summary["cost_usd"] == 0
    assert env.emulator.stats()["requests_total"] == requests, "cache hits send nothing"
    assert count(env.engine, "SELECT COUNT(*) FROM judge_scores") == 20, "upserted, not duplicated"


def test_a_bad_api_key_fails_fast_without_retries(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_warehouse(env.engine, (r for r in generate_responses(count=120, end=RUN_DATE, seed=10) if r["id"] > 5))
    with EmulatorServer(EmulatorConfig(latency_median_s=0.005, api_key="the-right-key")) as strict:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(strict.url, key="wrong"))
        result = run_dag(RUN_DATE)
        requests = strict.stats()["requests_total"]

    assert result.state == "failed"
    assert result.states_of("score_batch") == ["failed"]
    assert requests <= 8, f"a terminal error stops the task after a handful of requests, saw {requests}"
    with env.engine.connect() as conn:
        kinds = dict(conn.exec_driver_sql("SELECT kind, COUNT(*) FROM judge_errors GROUP BY kind").all())
    assert kinds == {"terminal": 115}, "every response is accounted for, and stays eligible"


def test_unknown_rubric_is_a_clear_failure(env: Env) -> None:
    seed_warehouse(env.engine, generate_responses(count=5, end=RUN_DATE, seed=11))

    result = run_dag(RUN_DATE, conf={"rubric": "no_such_rubric"})

    assert result.state == "failed"
    assert result.states_of("calibrate_rubric") == ["failed"], "the first task to open the rubric"
    assert result.states_of("extract_responses") == ["upstream_failed"]
    assert env.emulator.stats()["requests_total"] == 0


def test_connection_json_is_what_the_hook_reads() -> None:
    data = json.loads(anthropic_connection("http://127.0.0.1:9"))
    assert data == {"conn_type": "anthropic", "password": "test-key", "host": "http://127.0.0.1:9"}
