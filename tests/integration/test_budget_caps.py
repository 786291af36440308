"""The budget caps hold over several mapped tasks, across a retry and across days, in Redis.

The caps are small enough to be reached. Mapped score tasks run at once in their own processes and
share the run and day ledgers in a private Redis. Between steps that Redis is flushed, as a
restart or an expired key would: then a task's caps must start from what the warehouse says this
run and this day already spent, not from zero.

A short rubric (no cached prefix) and an output estimate near what the emulator answers make each
request reserve about what it then costs, so a run really fills its cap: a task that started from
zero instead of the warehouse's figure would spend a second cap's worth and show it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, create_engine, text

from judgeflow.tasks import pipeline
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import write_settings

pytestmark = pytest.mark.redis

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
RUN_CAP, DAY_CAP = 0.004, 0.006
TERSE = """
name: terse
version: 1
instructions: Judge whether the answer helps the customer.
criteria:
  - name: accuracy
    description: Is the answer correct?
  - name: tone
    description: Is the answer polite?
"""


def run_context(run_id: str) -> dict[str, Any]:
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=run_id, run_after=RUN_DATE)
    return {"dag_run": dag_run, "logical_date": RUN_DATE, "params": {}}


def score_in_process(job: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    """One mapped score task in a process of its own, as a worker runs it."""
    settings, batch, run_id = job
    return pipeline.score_batch(settings, batch, run_context(run_id))


@pytest.fixture
def env(
    tmp_path: Path,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    private_redis: tuple[int, subprocess.Popen[bytes]],
) -> Iterator[tuple[str, Engine, redis.Redis]]:
    path = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    nonce = secrets.token_hex(4)
    rows = generate_responses(count=65, end=RUN_DATE, seed=61)
    seed_warehouse(engine, ({**r, "question": f"{r['question']} #{nonce}"} for r in rows if r["id"] > 5))
    rubrics = tmp_path / "rubrics"
    rubrics.mkdir()
    (rubrics / "terse.yaml").write_text(TERSE, encoding="utf-8")
    settings = write_settings(
        tmp_path,
        rubric="terse",
        rubric_dir=str(rubrics),
        cache={"enabled": False},
        batching={"batch_size": 20},
        judge={"concurrency": 4},
        budget={"max_cost_usd_per_run": RUN_CAP, "max_cost_usd_per_day": DAY_CAP, "expected_output_tokens": 60},
    )
    port, _ = private_redis
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(path))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_CACHE", f"redis://127.0.0.1:{port}/0")
    ledger = redis.Redis(host="127.0.0.1", port=port)
    with EmulatorServer(EmulatorConfig(latency_median_s=0.01)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        yield str(settings), engine, ledger
    ledger.close()
    engine.dispose()


def spent(engine: Engine, run_id: str | None = None) -> float:
    query = "SELECT COALESCE(SUM(cost_usd), 0) FROM judge_scores"
    with engine.connect() as conn:
        if run_id is None:
            return float(conn.execute(text(query)).scalar_one())
        return float(conn.execute(text(query + " WHERE dag_run_id = :r"), {"r": run_id}).scalar_one())


def held_back(engine: Engine, run_id: str) -> int:
    query = "SELECT COUNT(*) FROM judge_errors WHERE kind = 'budget_exhausted' AND dag_run_id = :r"
    with engine.connect() as conn:
        return int(conn.execute(text(query), {"r": run_id}).scalar_one())


def test_caps_hold_over_mapped_tasks_a_retry_and_days(env: tuple[str, Engine, redis.Redis]) -> None:
    settings, engine, ledger = env
    first_run = f"caps_{secrets.token_hex(3)}"

    # 1. three mapped tasks at once, one run cap and one day cap shared through Redis
    batches = pipeline.extract_responses(settings, run_context(first_run))
    assert len(batches) == 3
    with ProcessPoolExecutor(max_workers=3, mp_context=get_context("spawn")) as pool:
        totals = list(pool.map(score_in_process, [(settings, b, first_run) for b in batches]))
    assert sum(t["scored"] for t in totals) > 0 and sum(t["budget_refused"] for t in totals) > 0, "reached"
    assert spent(engine, first_run) <= RUN_CAP
    assert held_back(engine, first_run) > 0

    # 2. a retry of the first task after Redis lost its keys: the run already spent what it may
    ledger.flushall()
    retry = pipeline.score_batch(settings, batches[0], run_context(first_run))
    assert retry["budget_refused"] > 0, "the retry starts from what the run spent, and stops at the cap"
    assert spent(engine, first_run) <= RUN_CAP

    # 3. another run the same day, Redis empty again: the run cap is fresh, the day cap is not
    ledger.flushall()
    second_run = f"caps_{secrets.token_hex(3)}"
    for batch in pipeline.extract_responses(settings, run_context(second_run)):
        pipeline.score_batch(settings, batch, run_context(second_run))
    assert 0 < spent(engine, second_run) <= RUN_CAP
    assert spent(engine) <= DAY_CAP, "the day cap counts both runs"

    # 4. the next day: yesterday's spending no longer counts against today's cap
    with engine.begin() as conn:
        conn.execute(text("UPDATE judge_scores SET scored_at = :yesterday"), {"yesterday": RUN_DATE})
    ledger.flushall()
    third_run = f"caps_{secrets.token_hex(3)}"
    for batch in pipeline.extract_responses(settings, run_context(third_run)):
        pipeline.score_batch(settings, batch, run_context(third_run))
    assert 0 < spent(engine, third_run) <= RUN_CAP, "a new day, a new day cap"
