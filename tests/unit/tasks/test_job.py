"""The task's job: the run read from the Airflow context once, closed with its engine and cache."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine

from judgeflow.records import CriterionScore, ScoreRecord, Usage
from judgeflow.tasks.job import Job, RunContext
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import sqlite_connection
from tests.support.dag_runs import write_settings

END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def context(run_id: str = "manual__1", **extra: Any) -> dict[str, Any]:
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=run_id, run_after=END, run_type="scheduled")
    return {"dag_run": dag_run, "params": {}, **extra}


@pytest.mark.parametrize(
    ("extra", "start", "end"),
    [
        pytest.param({"logical_date": END}, END - dt.timedelta(days=1), END, id="zero-length-cron-interval"),
        pytest.param({}, END - dt.timedelta(days=1), END, id="manual-run-without-logical-date"),
        pytest.param(
            {"data_interval_start": END - dt.timedelta(hours=6), "data_interval_end": END},
            END - dt.timedelta(hours=6),
            END,
            id="a-real-interval-as-it-is",
        ),
    ],
)
def test_the_judged_interval(extra: dict[str, Any], start: dt.datetime, end: dt.datetime) -> None:
    run = RunContext.from_airflow(context(**extra))
    assert (run.interval_start, run.interval_end) == (start, end)
    assert run.run_key == "llm_judge_daily/manual__1"


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Job:
    path = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    seed_warehouse(engine, generate_responses(count=5, end=END, seed=1))
    engine.dispose()
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(path))
    settings = write_settings(tmp_path, budget={"max_cost_usd_per_run": 1.0, "max_cost_usd_per_day": 2.0})
    return Job.open(str(settings), context(run_id=f"r_{secrets.token_hex(3)}"))


def test_close_disposes_of_the_engine_and_closes_the_cache(job: Job) -> None:
    job.warehouse.ensure_schema()
    cache = job.cache
    assert job.cache is cache, "opened once"
    pool = job.warehouse.engine.pool
    with job:
        assert pool.checkedin() >= 1, "the pool holds a connection while the task runs"
    assert job.warehouse.engine.pool is not pool, "disposed: a fresh, empty pool replaced it"
    assert job.warehouse.engine.pool.checkedin() == 0
    assert cache._conn is None, "the embedded cache file was closed"  # type: ignore[attr-defined]
    job.close()  # twice is fine


def test_budget_caps_start_from_what_the_warehouse_says_was_spent(job: Job) -> None:
    """A retried task, a second mapped task or a realtime retry after a Message Batch all see the
    money already spent by this run and this day."""
    job.warehouse.ensure_schema()
    now = END + dt.timedelta(hours=3)
    verdict = {"accuracy": CriterionScore(3, "ok")}

    def score(response_id: int, dag_run_id: str, cost: float) -> ScoreRecord:
        return ScoreRecord(
            response_id, "helpfulness", "v", 3.0, verdict, "m", Usage(), cost, 1, False, False, dag_run_id, now
        )

    job.warehouse.write([score(1, job.run.run_id, 0.25), score(2, "another_run", 0.5)], [])

    run_cap, day_cap = job.budget_caps(now=now)

    assert (run_cap.name, run_cap.limit_usd, run_cap.spent_usd) == ("run", 1.0, pytest.approx(0.25))
    assert (day_cap.name, day_cap.limit_usd, day_cap.spent_usd) == ("day", 2.0, pytest.approx(0.75))
    assert day_cap.key.endswith(f"{now:%Y-%m-%d}") and run_cap.key.endswith(job.run.run_key)
    job.close()
