"""Batch mode end to end: Message Batches through the provider's hook and deferrable trigger.

The emulator serves the Batches API (create, retrieve, JSONL results in shuffled order, cancel),
with knobs for errored and expired requests. ``dag.test()`` runs the trigger in line.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine

from judgeflow.emulator import EmulatorConfig, EmulatorServer, emulated_scores
from judgeflow.rubric import load_rubric
from judgeflow.sample_data import generate_responses, seed_warehouse
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import ROOT, run_dag, write_settings
from tests.support.warehouse_checks import count, outcome_counts, run_row

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
FAST_BATCHES = {"mode": "batch", "batch_mode": {"poll_interval_s": 0.1}}


def unique_rows(n: int, seed: int) -> Any:
    nonce = secrets.token_hex(4)
    for row in generate_responses(count=n + 5, end=RUN_DATE, seed=seed):
        if row["id"] > 5:
            yield {**row, "question": f"{row['question']} #{nonce}-{row['id']}"}


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    path = tmp_path / "warehouse.sqlite"
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(path))
    engine = create_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def test_batch_mode_scores_everything_at_the_batch_price(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = list(unique_rows(40, seed=41))
    seed_warehouse(warehouse, iter(rows))
    monkeypatch.setenv("JUDGEFLOW_SETTINGS", str(write_settings(tmp_path, **FAST_BATCHES)))
    config = EmulatorConfig(latency_median_s=0.005, batch_processing_s=0.3, seed=3)
    with EmulatorServer(config) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE)
        stats = emulator.stats()

    assert result.state == "success", result.task_states
    assert outcome_counts(warehouse, result.run_id) == {
        "staged": 40,
        "scored": 40,
        "errored": 0,
        "both": 0,
        "neither": 0,
    }
    assert stats["batches_created"] == 1
    assert stats["batch_requests_total"] == 40
    assert stats["requests_total"] == 0, "no request went through /v1/messages: all 40 were in the batch"
    rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
    with warehouse.connect() as conn:
        stored = dict(conn.exec_driver_sql("SELECT response_id, overall FROM judge_scores").all())
        one = conn.exec_driver_sql(
            "SELECT input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_usd "
            "FROM judge_scores WHERE cache_hit = 0 LIMIT 1"
        ).one()
    for row in rows:  # results came back shuffled; each matched its own response
        expected = rubric.overall(emulated_scores(row["response"], rubric.criterion_names, 1, 5))
        assert stored[row["id"]] == pytest.approx(expected)
    full_price = (one[0] * 1 + one[1] * 5 + one[2] * 1.25 + one[3] * 0.1) / 1e6
    assert one[4] == pytest.approx(full_price / 2), "batch results cost half"


def test_errored_and_expired_requests_are_judged_again_in_realtime(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_warehouse(warehouse, unique_rows(60, seed=42))
    monkeypatch.setenv("JUDGEFLOW_SETTINGS", str(write_settings(tmp_path, **FAST_BATCHES)))
    config = EmulatorConfig(
        latency_median_s=0.005, batch_processing_s=0.3, batch_rate_errored=0.2, batch_rate_expired=0.2, seed=5
    )
    with EmulatorServer(config) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE)
        stats = emulator.stats()

    assert result.state == "success", result.task_states
    assert outcome_counts(warehouse, result.run_id)["scored"] == 60
    realtime = stats["by_status"].get("200", 0)
    assert 0 < realtime < 60, "only the failed requests were sent again, one by one"
    assert count(warehouse, "SELECT COUNT(*) FROM judge_scores WHERE latency_ms > 0") == realtime


def test_a_big_batch_is_split_and_a_killed_task_reattaches_instead_of_paying_twice(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from judgeflow import pipeline
    from judgeflow.operators import ScoreBatchOperator

    seed_warehouse(warehouse, unique_rows(35, seed=43))
    settings = write_settings(tmp_path, mode="batch", batch_mode={"poll_interval_s": 0.1, "max_requests": 10})
    monkeypatch.setenv("JUDGEFLOW_SETTINGS", str(settings))
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=f"killed_{secrets.token_hex(3)}", run_after=RUN_DATE)

    def context() -> dict[str, Any]:
        return {"dag_run": dag_run, "logical_date": RUN_DATE, "params": {}}

    # The batches must still be open when the retry comes (it would rightly collect ended ones
    # without deferring), however slow a shared machine makes the steps in between.
    processing_s = 5.0
    with EmulatorServer(EmulatorConfig(latency_median_s=0.005, batch_processing_s=processing_s)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        (batch,) = pipeline.extract_responses(str(settings), context())
        first = ScoreBatchOperator(task_id="score_batch", settings_path=str(settings), batch=batch)
        with pytest.raises(TaskDeferred) as deferred:
            first.execute(context())  # submits, then the worker dies while deferred
        assert emulator.stats()["batches_created"] == 4, "35 requests at 10 a batch"

        retry = ScoreBatchOperator(task_id="score_batch", settings_path=str(settings), batch=batch)
        with pytest.raises(TaskDeferred) as again:
            retry.execute(context())
        assert emulator.stats()["batches_created"] == 4, "the retry re-attached"
        assert again.value.trigger.batch_id == deferred.value.trigger.batch_id

        totals = resume_until_collected(retry, context, again.value, timeout_s=60)

    assert totals["scored_from_batches"] == 35
    assert count(warehouse, "SELECT COUNT(*) FROM judge_scores") == 35
    assert count(warehouse, "SELECT COUNT(*) FROM judge_message_batches WHERE status = 'collected'") == 4
    summary = pipeline.summarize_run(str(settings), [totals], context())
    assert (summary["extracted"], summary["scored"], summary["unaccounted"]) == (35, 35, 0)
    assert run_row(warehouse, dag_run.run_id)["scored"] == 35


def resume_until_collected(operator: Any, context: Any, deferred: Any, *, timeout_s: float) -> dict[str, Any]:
    """What the triggerer and the worker do: resume on the batch's event, defer again on the next
    batch still open, until every batch has ended and the task collects them."""
    from airflow.sdk.exceptions import TaskDeferred

    give_up = time.monotonic() + timeout_s
    while True:
        time.sleep(0.2)
        try:
            return dict(
                operator.execute_complete(context(), {"status": "success", "batch_id": deferred.trigger.batch_id})
            )
        except TaskDeferred as again:
            assert time.monotonic() < give_up, "the batches never ended"
            deferred = again
