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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import airflow.providers.redis.hooks.redis  # noqa: F401  (see below)
import pytest
import redis
import redis.asyncio

from judgeflow.config import DEFAULT_PRICES, BudgetConfig, ModelPrice
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
    tokens_for_chars,
)
from judgeflow.records import Usage
from tests.conftest import REDIS_ADDRESS, require_tcp

# Airflow (``open_budget`` finds its Redis connection through the provider's hook) is imported with
# this module, at collection, and not by the first test that opens a budget: importing it takes
# seconds, which would otherwise be one test's time (and its budget under make mutate, whose forked
# workers inherit what collection imported; a mutant's timeout is a multiple of its tests' times).

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


def _budget_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.budget"]


@pytest.fixture
def connection_lookup_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh thread for Airflow's connection lookup, which runs the secrets backends through
    asgiref's one shared worker thread (``SyncToAsync.single_thread_executor``). A process forked
    after that thread ran (make mutate's workers are) inherits an executor whose thread is gone, and
    the lookup waits forever; with its own executor each test's lookup answers at once."""
    from asgiref.sync import SyncToAsync

    executor = ThreadPoolExecutor(max_workers=1)
    monkeypatch.setattr(SyncToAsync, "single_thread_executor", executor)
    yield
    executor.shutdown(wait=True)


# A connection to a port nothing listens on: the refusal answers at once, so a test (or a mutant)
# that reaches Redis through it is decided in milliseconds, never by a timeout.
DEAD_REDIS_URI = "redis://127.0.0.1:1/0"


@pytest.mark.usefixtures("connection_lookup_thread")
def test_open_budget_without_caps_is_no_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """No caps: nothing is looked up (the connection would answer at once if it were)."""
    monkeypatch.setenv("AIRFLOW_CONN_JUDGEFLOW_TEST_BUDGET_NONE", DEAD_REDIS_URI)
    ledger = run(open_budget(BudgetConfig(), redis_conn_id="judgeflow_test_budget_none", caps=[]))
    assert isinstance(ledger, NoBudget)


@pytest.mark.usefixtures("connection_lookup_thread")
def test_open_budget_keeps_caps_in_process_when_redis_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_JUDGEFLOW_TEST_BUDGET_DEAD", DEAD_REDIS_URI)
    caps = [cap("run", 1.0, 0.75)]
    with caplog.at_level(logging.INFO, logger="judgeflow.judging.budget"):
        ledger = run(open_budget(BudgetConfig(), redis_conn_id="judgeflow_test_budget_dead", caps=caps))
    assert isinstance(ledger, LocalBudget)
    assert ledger.caps is caps, "the caps seeded from the warehouse, kept in this process"
    assert _budget_logs(caplog) == ["budget: run $0.7500 of $1.00"]
    assert run(ledger.reserve(0.25)) is True
    assert run(ledger.reserve(0.125)) is False


@pytest.mark.usefixtures("connection_lookup_thread")
def test_open_budget_shares_caps_through_a_reachable_redis(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, redis_keys: list[str]
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_JUDGEFLOW_TEST_BUDGET_REDIS", "redis://127.0.0.1:6379/0")
    caps = [cap("run", 1.0, 0.5), cap("day", 4.0, 2.0)]
    redis_keys += [c.key for c in caps]

    async def scenario() -> tuple[Any, bool, bool, list[bytes | None]]:
        ledger = await open_budget(BudgetConfig(), redis_conn_id="judgeflow_test_budget_redis", caps=caps)
        fits, refused = await ledger.reserve(0.25), await ledger.reserve(0.5)
        values = [await ledger._client.get(c.key) for c in caps]
        await ledger.aclose()
        return ledger, fits, refused, values

    with caplog.at_level(logging.INFO, logger="judgeflow.judging.budget"):
        ledger, fits, refused, values = run(scenario())
    assert isinstance(ledger, RedisBudget)
    assert ledger._caps is caps
    assert (fits, refused) == (True, False)
    assert values == [b"0.75", b"2.25"], "the reservation landed on both caps' keys, from their seeds"
    assert _budget_logs(caplog) == ["budget: budget in Redis (run $1.00, day $4.00)"]


class _ClientThatFailsToClose:
    """A client whose connection already broke: closing it raises."""

    def __init__(self) -> None:
        self.error = redis.ConnectionError("connection reset")

    def register_script(self, script: str) -> object:
        return object()

    async def aclose(self) -> None:
        raise self.error


def test_closing_a_broken_redis_client_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client = _ClientThatFailsToClose()
    ledger = RedisBudget(client, [cap("run")])
    with caplog.at_level(logging.DEBUG, logger="judgeflow.judging.budget"):
        assert run(ledger.aclose()) is None
    (record,) = [r for r in caplog.records if r.name == "judgeflow.judging.budget"]
    assert (record.levelno, record.getMessage()) == (logging.DEBUG, "closing the budget's Redis client failed")
    assert record.exc_info is not None and record.exc_info[1] is client.error, "with the traceback"


# --- the promise: spend passes a cap by no more than the estimation error of what is in flight ---


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def test_budgets_sharing_redis_stop_at_the_cap_and_pass_it_only_by_the_error_in_flight(
    redis_keys: list[str],
) -> None:
    """Two tasks (two clients) share a run's and a day's caps in Redis. The first to reach Redis seeds
    each key with what the warehouse said was spent; the second task's seeds (read before the first
    one's spend was written, so stale) are ignored once the key exists. Reservations stop exactly at
    the cap; a request that costs more than its estimate passes it by that difference, and then
    nothing more is let through."""
    config = BudgetConfig(max_cost_usd_per_run=1.0, max_cost_usd_per_day=1.5)
    run_key, day = _unique("suite__run"), _unique("2026-11-30")
    first_caps = budget_caps(config, run_key=run_key, day=day, run_spent=0.25, day_spent=0.5)
    stale_caps = budget_caps(config, run_key=run_key, day=day, run_spent=0.0, day_spent=0.0)
    redis_keys += [c.key for c in first_caps]

    async def scenario() -> tuple[list[bool], list[bytes | None], bool, list[bytes | None]]:
        a, b = RedisBudget(_client(), first_caps), RedisBudget(_client(), stale_caps)
        answers = [await a.reserve(0.25), await b.reserve(0.25), await a.reserve(0.25), await b.reserve(0.25)]
        after_reserving = [await a._client.get(c.key) for c in first_caps]
        await a.settle(0.25, 0.375)  # cost more than estimated
        await b.settle(0.25, 0.25)
        after_settling = [await a._client.get(c.key) for c in first_caps]
        nothing_more = await b.reserve(0.0)
        await a.aclose()
        await b.aclose()
        return answers, after_reserving, nothing_more, after_settling

    answers, after_reserving, nothing_more, after_settling = run(scenario())
    assert answers == [True, True, True, False]
    assert after_reserving == [b"1", b"1.25"], "run: 0.25 seeded + 3 x 0.25; day: 0.5 + 3 x 0.25"
    assert after_settling == [b"1.125", b"1.375"], "over the run cap by the one estimate's error, 0.125"
    assert nothing_more is False


def test_a_new_day_starts_from_that_days_spend_under_its_own_key(redis_keys: list[str]) -> None:
    """The day cap's key names the day: a full day refuses, the next day starts from its own seed
    (what the warehouse says that day spent) and leaves the full day's ledger as it was."""
    config = BudgetConfig(max_cost_usd_per_day=1.0)
    day1, day2 = _unique("2026-11-30"), _unique("2026-12-01")
    (day1_cap,) = budget_caps(config, run_key="r", day=day1, run_spent=0.0, day_spent=0.5)
    (day2_cap,) = budget_caps(config, run_key="r", day=day2, run_spent=0.0, day_spent=0.25)
    redis_keys += [day1_cap.key, day2_cap.key]

    async def scenario() -> tuple[list[bool], list[bool], list[bytes | None], list[int]]:
        first, second = RedisBudget(_client(), [day1_cap]), RedisBudget(_client(), [day2_cap])
        on_day1 = [await first.reserve(0.25) for _ in range(3)]
        on_day2 = [await second.reserve(0.25) for _ in range(4)]
        values = [await first._client.get(key) for key in (day1_cap.key, day2_cap.key)]
        ttls = [await first._client.ttl(key) for key in (day1_cap.key, day2_cap.key)]
        await first.aclose()
        await second.aclose()
        return on_day1, on_day2, values, ttls

    on_day1, on_day2, values, ttls = run(scenario())
    assert on_day1 == [True, True, False]
    assert on_day2 == [True, True, True, False]
    assert values == [b"1", b"1"]
    assert all(LEDGER_TTL_S - 60 < ttl <= LEDGER_TTL_S for ttl in ttls), "a day's ledger expires after two days"


# --- the estimate's arithmetic ---


def test_tokens_for_chars_rounds_a_quarter_of_the_characters_up_times_the_tokenizer_factor() -> None:
    assert tokens_for_chars(8) == 2
    assert tokens_for_chars(9) == 3
    assert tokens_for_chars(400, 1.3) == 130
    assert tokens_for_chars(404, 1.3) == 132  # 131.3 up


def test_the_estimate_prices_the_models_tokens_uncached_at_full_price() -> None:
    """Haiku 5.5 ($0.10 / $0.50 per million, 1.3x the tokens): the estimate prices the counted input
    at the plain input rate (no cache discount, no batch discount: an estimate errs high there)."""
    price = DEFAULT_PRICES["claude-haiku-5-5"]
    estimator = CostEstimator(price, BudgetConfig(expected_output_tokens=300))
    assert estimator.tokenizer_factor == 1.3
    params = {"system": "s" * 398}  # 404 characters: 101 tokens of Haiku 4.5's, 131.3 -> 132 of this one
    assert estimator.input_tokens(params, tokenizer_factor=estimator.tokenizer_factor) == 132
    assert estimator.estimate(params) == 0.0001632  # (132 x 0.10 + 300 x 0.50) / 1e6


def test_an_estimate_over_the_long_context_threshold_pays_the_long_context_multiple() -> None:
    price = DEFAULT_PRICES["claude-haiku-5-5"]  # over 100K prompt tokens every rate is 5x
    estimator = CostEstimator(price, BudgetConfig(expected_output_tokens=300))
    over = {"system": "s" * 307_694}  # 307,700 characters x 1.3 / 4 = 100,002.5 -> 100,003 tokens
    under = {"system": "s" * 307_686}  # 307,692 characters: 99,999.9 -> 100,000 tokens, not over
    assert estimator.estimate(over) == round((100_003 * 0.10 + 300 * 0.50) / 1e6 * 5, 8)
    assert estimator.estimate(under) == round((100_000 * 0.10 + 300 * 0.50) / 1e6, 8)


def test_the_expected_output_is_rounded_up_to_whole_tokens() -> None:
    estimator = CostEstimator(PRICE, BudgetConfig(expected_output_tokens=500))
    for _ in range(9):
        estimator.observe(Usage(output_tokens=500))
    estimator.observe(Usage(output_tokens=501))  # the 10th: 500 + 1 / 10 = 500.1 -> 501 tokens
    assert estimator.estimate({}) == round((2 * 3.0 + 501 * 15.0) / 1e6, 8)
