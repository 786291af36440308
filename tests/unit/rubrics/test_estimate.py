"""The price of a staged work list: tokens from sizes, caching and batch mode priced as billed."""

from __future__ import annotations

import pytest

from judgeflow.config import Settings
from judgeflow.judging.prompt_cache import prefix_report
from judgeflow.rubric import load_rubric
from judgeflow.rubrics.estimate import estimate_cost
from judgeflow.storage.estimates import StagedSizes
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


def test_the_noise_sample_adds_its_second_asks_in_realtime() -> None:
    plain = estimate_cost(SIZES, RUBRIC, Settings(), mode="realtime", output_tokens_per_request=200)
    noisy_settings = Settings.model_validate({"noise": {"rate": 0.1}})
    noisy = estimate_cost(SIZES, RUBRIC, noisy_settings, mode="realtime", output_tokens_per_request=200)
    assert noisy.noise_requests == -(-plain.requests // 10)
    assert noisy.cost_usd == pytest.approx(plain.cost_usd * (1 + noisy.noise_requests / plain.requests), abs=1e-4)
    assert "noise re-asks" in noisy.describe()
    batch = estimate_cost(SIZES, RUBRIC, noisy_settings, mode="batch", output_tokens_per_request=200)
    assert batch.noise_requests == 0, "batch mode asks nothing twice"
