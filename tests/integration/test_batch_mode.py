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

from judgeflow.rubric import load_rubric
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer, emulated_scores
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import ROOT, deploy, run_judged_by, write_settings
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
    deploy(monkeypatch, write_settings(tmp_path, **FAST_BATCHES))
    config = EmulatorConfig(latency_median_s=0.005, batch_processing_s=0.3, seed=3)
    result, stats = run_judged_by(config, monkeypatch, RUN_DATE)

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
    deploy(monkeypatch, write_settings(tmp_path, **FAST_BATCHES))
    config = EmulatorConfig(
        latency_median_s=0.005, batch_processing_s=0.3, batch_rate_errored=0.2, batch_rate_expired=0.2, seed=5
    )
    result, stats = run_judged_by(config, monkeypatch, RUN_DATE)

    assert result.state == "success", result.task_states
    assert outcome_counts(warehouse, result.run_id)["scored"] == 60
    realtime = stats["by_status"].get("200", 0)
    assert 0 < realtime < 60, "only the failed requests were sent again, one by one"
    assert count(warehouse, "SELECT COUNT(*) FROM judge_scores WHERE latency_ms > 0") == realtime


def test_a_big_batch_is_split_and_a_killed_task_reattaches_instead_of_paying_twice(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from judgeflow.tasks import pipeline
    from judgeflow.tasks.operators import ScoreBatchOperator

    seed_warehouse(warehouse, unique_rows(35, seed=43))
    settings = write_settings(tmp_path, mode="batch", batch_mode={"poll_interval_s": 0.1, "max_requests": 10})
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=f"killed_{secrets.token_hex(3)}", run_after=RUN_DATE)

    def context() -> dict[str, Any]:
        return {"dag_run": dag_run, "logical_date": RUN_DATE, "params": {}}

    # The batches must still be open when the retry comes (it would rightly collect ended ones
    # without deferring), however slow a shared machine makes the steps in between.
    processing_s = 5.0
    with EmulatorServer(EmulatorConfig(latency_median_s=0.005, batch_processing_s=processing_s)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        (batch,) = pipeline.extract_responses(str(settings), context())
        first = ScoreBatchOperator(task_id="score_batch", suite=str(settings), batch=batch)
        with pytest.raises(TaskDeferred) as deferred:
            first.execute(context())  # submits, then the worker dies while deferred
        assert emulator.stats()["batches_created"] == 4, "35 requests at 10 a batch"

        retry = ScoreBatchOperator(task_id="score_batch", suite=str(settings), batch=batch)
        with pytest.raises(TaskDeferred) as again:
            retry.execute(context())
        assert emulator.stats()["batches_created"] == 4, "the retry re-attached"
        assert again.value.trigger.batch_id == deferred.value.trigger.batch_id

        totals = resume_until_collected(retry, context, again.value, timeout_s=60)

    assert totals["scored_from_batches"] == 35
    assert count(warehouse, "SELECT COUNT(*) FROM judge_scores") == 35
    assert count(warehouse, "SELECT COUNT(*) FROM judge_message_batches WHERE status = 'collected'") == 4
    summary = pipeline.summarize_run(str(settings), [totals], context())["rubrics"]["helpfulness"]
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


def test_realtime_retries_after_a_batch_count_against_the_run_budget(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the batches already spent counts: with the run's cap reached, the failed requests wait for
    the next run as ``budget_exhausted`` instead of being judged in realtime over the cap."""
    seed_warehouse(warehouse, unique_rows(40, seed=44))
    settings = write_settings(tmp_path, **FAST_BATCHES, budget={"max_cost_usd_per_run": 0.0001})
    deploy(monkeypatch, settings)
    config = EmulatorConfig(latency_median_s=0.005, batch_processing_s=0.3, batch_rate_errored=0.3, seed=6)
    result, stats = run_judged_by(config, monkeypatch, RUN_DATE)

    assert result.state == "success", result.task_states
    outcome = outcome_counts(warehouse, result.run_id)
    held_back = count(warehouse, "SELECT COUNT(*) FROM judge_errors WHERE kind = 'budget_exhausted'")
    assert held_back > 0, "some requests errored in the batch"
    assert (outcome["scored"] + held_back, outcome["neither"]) == (40, 0)
    assert stats["by_status"].get("200", 0) == 0, "no realtime request was sent over the cap"
    assert run_row(warehouse, result.run_id)["cost_usd"] > 0.0001, "the batches alone passed the cap"


def test_each_run_of_the_operator_opens_one_engine_and_disposes_of_it(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like the provider's operator holds its hook, a score task opens its settings, rubric and
    warehouse once per ``execute`` or ``execute_complete``, however many stages it runs, and
    disposes of the engine's pool when it returns or defers."""
    from airflow.sdk.exceptions import TaskDeferred
    from sqlalchemy.engine import Engine

    from judgeflow.storage import engine as storage_engine
    from judgeflow.tasks import pipeline
    from judgeflow.tasks.operators import ScoreBatchOperator

    seed_warehouse(warehouse, unique_rows(12, seed=45))
    settings = write_settings(tmp_path, **FAST_BATCHES)
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=f"once_{secrets.token_hex(3)}", run_after=RUN_DATE)

    def context() -> dict[str, Any]:
        return {"dag_run": dag_run, "logical_date": RUN_DATE, "params": {}}

    with EmulatorServer(EmulatorConfig(latency_median_s=0.005, batch_processing_s=0.5)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        (batch,) = pipeline.extract_responses(str(settings), context())
        opened: list[Engine] = []
        disposed: list[Engine] = []
        make_engine, dispose = storage_engine.create_engine, Engine.dispose

        def counting_create(*args: Any, **kwargs: Any) -> Engine:
            opened.append(make_engine(*args, **kwargs))
            return opened[-1]

        def counting_dispose(self: Engine, close: bool = True) -> None:
            disposed.append(self)
            dispose(self, close)

        monkeypatch.setattr(storage_engine, "create_engine", counting_create)
        monkeypatch.setattr(Engine, "dispose", counting_dispose)
        operator = ScoreBatchOperator(task_id="score_batch", suite=str(settings), batch=batch)
        with pytest.raises(TaskDeferred) as deferred:
            operator.execute(context())  # submit, then defer
        assert (len(opened), set(disposed)) == (1, set(opened)), "execute: one engine, disposed on deferral"
        totals = resume_until_collected(operator, context, deferred.value, timeout_s=60)

    resumes = len(opened) - 1
    assert resumes >= 1 and totals["scored_from_batches"] == 12
    assert set(disposed) == set(opened), "every engine opened was disposed of"


def test_a_response_whose_result_never_comes_back_is_judged_again_in_realtime(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API promises a result per request; when a line is missing anyway, the response is not left
    with neither a score nor an error: it is judged again in realtime, like an errored one."""
    seed_warehouse(warehouse, unique_rows(40, seed=46))
    deploy(monkeypatch, write_settings(tmp_path, **FAST_BATCHES))
    config = EmulatorConfig(latency_median_s=0.005, batch_processing_s=0.3, batch_rate_dropped=0.25, seed=7)
    result, stats = run_judged_by(config, monkeypatch, RUN_DATE)

    assert result.state == "success", result.task_states
    outcome = outcome_counts(warehouse, result.run_id)
    assert (outcome["staged"], outcome["scored"], outcome["neither"]) == (40, 40, 0)
    realtime = stats["by_status"].get("200", 0)
    assert 0 < realtime < 40, "only the missing ones were judged again"
    assert count(warehouse, "SELECT COUNT(*) FROM judge_scores WHERE latency_ms > 0") == realtime
    assert run_row(warehouse, result.run_id)["unaccounted"] == 0


def test_a_warmed_one_hour_cache_is_written_once_live_and_read_by_every_batch_request(
    tmp_path: Path, airflow_db: Path, warehouse: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = list(unique_rows(30, seed=43))
    seed_warehouse(warehouse, iter(rows))
    settings = {**FAST_BATCHES, "batch_mode": {"poll_interval_s": 0.1, "warm_cache": True}}
    deploy(monkeypatch, write_settings(tmp_path, **settings, judge={"cache_ttl": "1h"}))
    config = EmulatorConfig(latency_median_s=0.005, batch_processing_s=0.3, seed=5)
    result, stats = run_judged_by(config, monkeypatch, RUN_DATE)

    assert result.state == "success", result.task_states
    assert outcome_counts(warehouse, result.run_id)["scored"] == 30, "nothing lost: the warm-up's verdict counts"
    assert stats["requests_total"] == 1, "one live request warmed the cache"
    assert stats["batch_requests_total"] == 29, "and left the batch"
    assert stats["cache_creation_1h_tokens_total"] == stats["cache_creation_tokens_total"] > 4096
    with warehouse.connect() as conn:
        writes, reads = conn.exec_driver_sql(
            "SELECT SUM(cache_write_tokens > 0), SUM(cache_read_tokens > 0) FROM judge_scores"
        ).one()
    assert (writes, reads) == (1, 29), "the prefix was written once, live, and every batch request read it"
    billed = stats["billed_usd_total"]
    with warehouse.connect() as conn:
        recorded = conn.exec_driver_sql("SELECT SUM(cost_usd) FROM judge_scores").scalar()
    assert recorded == pytest.approx(billed, rel=1e-4), "the 1-hour write and the half-price batch, priced alike"
