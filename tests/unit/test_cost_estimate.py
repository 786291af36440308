"""The price of a staged work list: tokens from sizes, caching and batch mode priced as billed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from judgeflow.config import Settings
from judgeflow.cost_estimate import StagedSizes, estimate_cost, staged_sizes
from judgeflow.judge.caching import prefix_report
from judgeflow.pipeline import stage_run
from judgeflow.rubric import load_rubric
from judgeflow.sample_data import generate_responses, seed_warehouse
from judgeflow.warehouse import Warehouse
from tests.support.dag_runs import ROOT

RUBRIC = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
SIZES = StagedSizes(responses=120, judgeable=110, distinct_inputs=100, text_chars=110 * 400, batches=2)


def test_identical_and_empty_inputs_are_not_paid_for() -> None:
    estimate = estimate_cost(SIZES, RUBRIC, Settings(), mode="realtime", output_tokens_per_request=200)
    assert estimate.responses == 120
    assert estimate.requests == 100
    assert estimate.output_tokens == 100 * 200


def test_a_qualifying_prefix_is_written_once_per_score_task_and_read_after() -> None:
    assert prefix_report(RUBRIC).qualifies, "the default rubric's prefix is over Haiku 4.5's minimum"
    estimate = estimate_cost(SIZES, RUBRIC, Settings(), mode="realtime", output_tokens_per_request=200)
    per_request_prefix = estimate.cache_write_tokens // 2
    assert per_request_prefix > 4096
    assert estimate.cache_read_tokens == per_request_prefix * 98
    wrapper = estimate.input_tokens - 100 * 400 * 100 // 110 // 4  # tags and JSON around the judged text
    assert 0 < wrapper <= 100 * 60, "the uncached input is the judged text plus a small wrapper per request"


def test_batch_mode_is_half_the_realtime_price() -> None:
    realtime = estimate_cost(SIZES, RUBRIC, Settings(), mode="realtime", output_tokens_per_request=200)
    batch = estimate_cost(SIZES, RUBRIC, Settings(), mode="batch", output_tokens_per_request=200)
    assert batch.cost_usd == pytest.approx(realtime.cost_usd / 2, rel=1e-3)
    assert realtime.cost_usd > 0


def test_nothing_staged_costs_nothing() -> None:
    empty = StagedSizes(responses=0, judgeable=0, distinct_inputs=0, text_chars=0, batches=0)
    estimate = estimate_cost(empty, RUBRIC, Settings(), mode="realtime", output_tokens_per_request=200)
    assert (estimate.requests, estimate.cost_usd) == (0, 0)


def test_staged_sizes_measure_what_the_engine_would_send(tmp_path: Path) -> None:
    """NULL, empty and whitespace-only responses are not judged, duplicates once, long ones truncated."""
    end = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    rows = list(generate_responses(count=40, end=end, seed=5))
    rows.append({**rows[-1], "id": 41, "response": " \n\t "})
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    engine = create_engine(url)
    seed_warehouse(engine, rows)
    settings = Settings(judge={"max_response_chars": 500})
    warehouse = Warehouse.from_url(url, settings.source)
    warehouse.ensure_schema()
    stage_run(
        warehouse, settings, RUBRIC, run_key="r", start=end - dt.timedelta(days=1), end=end, rescore=True, limit=None
    )

    sizes = staged_sizes(warehouse, "r", max_response_chars=500)

    judged = [r for r in rows if r["response"] is not None and r["response"].strip()]
    assert len(judged) < len(rows) - 2, "the sample has a NULL, an empty and a blank response"
    assert (sizes.responses, sizes.judgeable) == (len(rows), len(judged))
    assert sizes.distinct_inputs == len({(r["question"], r["context"], r["response"]) for r in judged})
    assert any(len(r["response"]) > 500 for r in judged), "and one over the limit"
    chars = sum(len(r["question"] or "") + len(r["context"] or "") + min(len(r["response"]), 500) for r in judged)
    assert sizes.text_chars == chars
    warehouse.engine.dispose()
    engine.dispose()
