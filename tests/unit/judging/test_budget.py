"""The spending caps, fast: reserve before, settle after, in process and in the shared Redis ledger.

``tests/integration/test_budget_caps.py`` shows the caps holding over mapped tasks, a retry and days
in real DAG runs (a minute and more); these pin the ledger's arithmetic so that ``make mutate`` can
check every change to ``judgeflow.judging.budget`` in seconds (docs/mutation.md).
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from judgeflow.config import BudgetConfig, ModelPrice
from judgeflow.judging.budget import (
    CHARS_PER_TOKEN,
    LEDGER_TTL_S,
    Cap,
    CostEstimator,
    LocalBudget,
    NoBudget,
    RedisBudget,
    budget_caps,
    open_budget,
)
from judgeflow.records import Usage
from tests.conftest import REDIS_ADDRESS, require_tcp

PRICE = ModelPrice(input=3.0, output=15.0)


def cap(name: str = "run", limit: float = 1.0, spent: float = 0.0) -> Cap:
    return Cap(name, f"judgeflow:test:budget:{name}:{uuid.uuid4().hex}", limit, spent)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_no_budget_lets_everything_through() -> None:
    ledger = NoBudget()
    assert run(ledger.reserve(1e9)) is True
    assert run(ledger.settle(1.0, 2.0)) is None
    assert ledger.describe() == "no budget cap"
    assert run(ledger.aclose()) is None


def test_a_cap_fits_up_to_and_including_its_limit() -> None:
    c = Cap("run", "k", limit_usd=1.0, spent_usd=0.25, reserved_usd=0.25)
    assert c.fits(0.5)
    assert not c.fits(0.5000001)


def test_local_budget_reserves_up_to_the_limit_then_refuses() -> None:
    run_cap, day_cap = cap("run", 1.0, 0.4), cap("day", 10.0, 0.0)
    ledger = LocalBudget([run_cap, day_cap])
    assert run(ledger.reserve(0.6)) is True
    assert (run_cap.reserved_usd, day_cap.reserved_usd) == (0.6, 0.6)
    assert run(ledger.reserve(0.01)) is False
    assert (run_cap.reserved_usd, day_cap.reserved_usd) == (0.6, 0.6), "a refusal reserves on no cap"


def test_local_budget_adds_reservations_up() -> None:
    run_cap = cap("run", 1.0)
    ledger = LocalBudget([run_cap])
    assert run(ledger.reserve(0.25)) and run(ledger.reserve(0.5))
    assert run_cap.reserved_usd == 0.75
    assert run(ledger.reserve(0.3)) is False


def test_local_budget_refuses_when_one_cap_of_several_is_full() -> None:
    run_cap, day_cap = cap("run", 10.0), cap("day", 1.0, 0.95)
    ledger = LocalBudget([run_cap, day_cap])
    assert run(ledger.reserve(0.1)) is False
    assert run_cap.reserved_usd == 0.0


def test_local_budget_settles_the_reservation_into_the_real_cost() -> None:
    run_cap = cap("run", 1.0, 0.1)
    ledger = LocalBudget([run_cap])
    assert run(ledger.reserve(0.3))
    run(ledger.settle(0.3, 0.2))
    assert run_cap.reserved_usd == 0.0
    assert run_cap.spent_usd == pytest.approx(0.3)
    run(ledger.settle(0.5, 0.0))  # settling more than is reserved never leaves a negative reservation
    assert run_cap.reserved_usd == 0.0
    assert ledger.describe() == "run $0.3000 of $1.00"
    assert run(ledger.aclose()) is None


def test_local_budget_describes_every_cap() -> None:
    ledger = LocalBudget([cap("run", 2.0, 0.12345), cap("day", 5.0, 1.5)])
    assert ledger.describe() == "run $0.1235 of $2.00, day $1.5000 of $5.00"


def test_estimated_input_tokens_are_a_quarter_of_the_characters_of_system_tools_and_messages() -> None:
    assert CHARS_PER_TOKEN == 4
    # '""' + '[]' + '[]' when nothing is there: 6 characters, 2 tokens
    assert CostEstimator.input_tokens({}) == 2
    # non-ASCII counts as one character each (not a \\u escape): '"ééééééé"' is 9, plus 2 + 2
    assert CostEstimator.input_tokens({"system": "é" * 7}) == math.ceil(13 / 4)
    params = {"system": "s" * 10, "tools": [{"a": 1}], "messages": [{"role": "user", "content": "x"}]}
    chars = len('"ssssssssss"') + len('[{"a": 1}]') + len('[{"role": "user", "content": "x"}]')
    assert CostEstimator.input_tokens(params) == math.ceil(chars / 4)


def test_estimate_prices_the_input_and_the_expected_output() -> None:
    estimator = CostEstimator(PRICE, BudgetConfig(expected_output_tokens=300))
    params = {"system": "s" * 398}  # 400 + 2 + 2 characters: 101 tokens
    assert estimator.input_tokens(params) == 101
    assert estimator.estimate(params) == pytest.approx((101 * 3.0 + 300 * 15.0) / 1e6)


def test_expected_output_rises_on_the_first_reply_then_follows_the_mean_from_the_tenth() -> None:
    estimator = CostEstimator(PRICE, BudgetConfig(expected_output_tokens=300))
    params: dict[str, Any] = {}  # 2 input tokens

    def expected_output() -> float:
        return (estimator.estimate(params) * 1e6 - 2 * 3.0) / 15.0

    estimator.observe(Usage(output_tokens=500))
    assert expected_output() == pytest.approx(500)
    for _ in range(8):  # replies 2 to 9 change nothing
        estimator.observe(Usage(output_tokens=100))
    assert expected_output() == pytest.approx(500)
    estimator.observe(Usage(output_tokens=100))  # the 10th: 500 + (100 - 500) / 10
    assert expected_output() == pytest.approx(460)
    estimator.observe(Usage(output_tokens=460 + 11 * 10))  # the 11th: + 110 / 11
    assert expected_output() == pytest.approx(470)


def test_a_first_reply_shorter_than_expected_keeps_the_expectation() -> None:
    estimator = CostEstimator(PRICE, BudgetConfig(expected_output_tokens=300))
    estimator.observe(Usage(output_tokens=50))
    assert estimator.estimate({}) == pytest.approx((2 * 3.0 + 300 * 15.0) / 1e6)


def test_budget_caps_name_the_run_and_the_day() -> None:
    assert budget_caps(BudgetConfig(), run_key="r", day="2026-11-30", run_spent=0.0, day_spent=0.0) == []
    config = BudgetConfig(max_cost_usd_per_run=2.0, max_cost_usd_per_day=5.0)
    caps = budget_caps(config, run_key="suite__r1", day="2026-11-30", run_spent=0.5, day_spent=1.5)
    assert caps == [
        Cap("run", "judgeflow:budget:run:suite__r1", 2.0, 0.5),
        Cap("day", "judgeflow:budget:day:2026-11-30", 5.0, 1.5),
    ]
    day_only = budget_caps(
        BudgetConfig(max_cost_usd_per_day=5.0), run_key="r", day="2026-11-30", run_spent=0.5, day_spent=1.5
    )
    assert [c.name for c in day_only] == ["day"]


# --- the shared ledger in Redis ---


@pytest.fixture
def redis_keys() -> Iterator[list[str]]:
    """Keys the test's caps use, deleted afterwards (unique names: other runs share the server)."""
    require_tcp("Redis", REDIS_ADDRESS)
    keys: list[str] = []
    yield keys
    if keys:
        redis.Redis(*REDIS_ADDRESS).delete(*keys)


def _client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis(host=REDIS_ADDRESS[0], port=REDIS_ADDRESS[1])


def _dead_client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)


def test_redis_ledger_starts_from_the_spend_so_far_and_refuses_past_the_limit(redis_keys: list[str]) -> None:
    run_cap = cap("run", 1.0, 0.7)
    redis_keys.append(run_cap.key)

    async def scenario() -> tuple[bool, bool, float, int]:
        ledger = RedisBudget(_client(), [run_cap])
        first, second = await ledger.reserve(0.3), await ledger.reserve(0.01)
        value = float(await ledger._client.get(run_cap.key))
        ttl = await ledger._client.ttl(run_cap.key)
        await ledger.aclose()
        return first, second, value, ttl

    first, second, value, ttl = run(scenario())
    assert (first, second) == (True, False)
    assert value == pytest.approx(1.0)
    assert LEDGER_TTL_S - 60 < ttl <= LEDGER_TTL_S
    assert LEDGER_TTL_S == 2 * 24 * 3600


def test_redis_ledger_reserves_on_every_cap_or_on_none(redis_keys: list[str]) -> None:
    run_cap, day_cap = cap("run", 10.0, 1.0), cap("day", 2.0, 1.9)
    redis_keys += [run_cap.key, day_cap.key]

    async def scenario() -> tuple[bool, bool, float, float]:
        ledger = RedisBudget(_client(), [run_cap, day_cap])
        refused = await ledger.reserve(0.5)
        fits = await ledger.reserve(0.1)
        run_value = float(await ledger._client.get(run_cap.key))
        day_value = float(await ledger._client.get(day_cap.key))
        await ledger.aclose()
        return refused, fits, run_value, day_value

    refused, fits, run_value, day_value = run(scenario())
    assert (refused, fits) == (False, True)
    assert run_value == pytest.approx(1.1)
    assert day_value == pytest.approx(2.0)


def test_redis_ledger_settles_the_difference_on_every_cap(redis_keys: list[str]) -> None:
    run_cap, day_cap = cap("run", 10.0, 1.0), cap("day", 20.0, 3.0)
    redis_keys += [run_cap.key, day_cap.key]

    async def scenario() -> tuple[float, float]:
        ledger = RedisBudget(_client(), [run_cap, day_cap])
        assert await ledger.reserve(0.5)
        await ledger.settle(0.5, 0.2)
        values = float(await ledger._client.get(run_cap.key)), float(await ledger._client.get(day_cap.key))
        await ledger.aclose()
        return values

    assert run(scenario()) == pytest.approx((1.2, 3.2))


def test_redis_ledger_describes_its_caps() -> None:
    ledger = RedisBudget(_dead_client(), [cap("run", 2.0), cap("day", 5.5)])
    assert ledger.describe() == "budget in Redis (run $2.00, day $5.50)"


def test_an_unreachable_redis_falls_back_to_caps_in_process(caplog: pytest.LogCaptureFixture) -> None:
    run_cap = cap("run", 1.0, 0.5)

    async def scenario() -> tuple[bool, bool]:
        ledger = RedisBudget(_dead_client(), [run_cap])
        with caplog.at_level(logging.WARNING, logger="judgeflow.judging.budget"):
            fits = await ledger.reserve(0.4)
        refused = await ledger.reserve(0.2)
        await ledger.settle(0.4, 0.3)
        assert ledger.describe() == "run $0.8000 of $1.00"
        await ledger.aclose()  # closing the failed client does not raise
        return fits, refused

    assert run(scenario()) == (True, False)
    assert run_cap.reserved_usd == 0.0
    assert run_cap.spent_usd == pytest.approx(0.8)
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.budget"]
    assert warning.startswith("budget ledger in Redis failed (")
    assert "127.0.0.1:1" in warning, "the warning names the failure"
    assert warning.endswith("); keeping this task's caps in process")


def test_a_settle_that_fails_in_redis_is_kept_in_process(caplog: pytest.LogCaptureFixture) -> None:
    run_cap = cap("run", 1.0, 0.1)
    run_cap.reserved_usd = 0.3

    async def scenario() -> None:
        ledger = RedisBudget(_dead_client(), [run_cap])
        with caplog.at_level(logging.WARNING, logger="judgeflow.judging.budget"):
            await ledger.settle(0.3, 0.25)
        await ledger.settle(0.0, 0.05)  # and later ones too
        await ledger.aclose()

    run(scenario())
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.budget"]
    assert "127.0.0.1:1" in warning
    assert run_cap.reserved_usd == 0.0
    assert run_cap.spent_usd == pytest.approx(0.4)


def test_open_budget_without_caps_is_no_budget() -> None:
    assert isinstance(run(open_budget(BudgetConfig(), redis_conn_id="judgeflow_test_none", caps=[])), NoBudget)


def test_open_budget_keeps_caps_in_process_when_redis_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_JUDGEFLOW_TEST_BUDGET_DEAD", "redis://127.0.0.1:1/0")
    caps = [cap("run", 1.0)]
    ledger = run(open_budget(BudgetConfig(), redis_conn_id="judgeflow_test_budget_dead", caps=caps))
    assert isinstance(ledger, LocalBudget)
    assert ledger.caps == caps


def test_open_budget_shares_caps_through_a_reachable_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    require_tcp("Redis", REDIS_ADDRESS)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGEFLOW_TEST_BUDGET_REDIS", "redis://127.0.0.1:6379/0")
    caps = [cap("run", 1.0)]

    async def scenario() -> Any:
        ledger = await open_budget(BudgetConfig(), redis_conn_id="judgeflow_test_budget_redis", caps=caps)
        await ledger.aclose()
        return ledger

    assert isinstance(run(scenario()), RedisBudget)
