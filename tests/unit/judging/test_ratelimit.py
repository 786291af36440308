"""The in-process rate limiter on a fake clock, one real-time run, and the choices of open_rate_limiter."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest

from judgeflow.judging import redis_client
from judgeflow.judging.ratelimit import (
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    UnlimitedRateLimiter,
    limiter_scope,
    open_rate_limiter,
)


class FakeTime:
    """A clock that only moves when someone sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0, "a limiter should never sleep for nothing"
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def local(fake: FakeTime, rpm: float | None, tpm: float | None, burst: float = 1.0) -> LocalRateLimiter:
    return LocalRateLimiter(
        requests_per_minute=rpm,
        input_tokens_per_minute=tpm,
        burst_seconds=burst,
        clock=fake.clock,
        sleep=fake.sleep,
    )


def grant_times(limiter: RateLimiter, fake: FakeTime, costs: list[int]) -> list[float]:
    """Acquire ``costs`` one after another; the fake time of each grant."""

    async def scenario() -> list[float]:
        times = []
        for cost in costs:
            await limiter.acquire(tokens=cost)
            times.append(fake.now)
        return times

    return asyncio.run(scenario())


def test_grants_the_burst_at_once_then_paces_at_the_rate() -> None:
    fake = FakeTime()
    limiter = local(fake, rpm=600, tpm=None)  # 10/s, capacity 10
    times = grant_times(limiter, fake, [0] * 100)
    assert times[:10] == [0.0] * 10
    assert times[10] == pytest.approx(0.1)
    assert times[-1] == pytest.approx(9.0)  # 90 paced grants at 10/s
    gaps = [b - a for a, b in itertools.pairwise(times[10:])]
    assert all(g == pytest.approx(0.1) for g in gaps)
    assert len(fake.sleeps) == 90  # one sleep per paced grant: no polling


def test_token_bucket_paces_input_tokens() -> None:
    fake = FakeTime()
    limiter = local(fake, rpm=None, tpm=60_000, burst=2.0)  # 1000 tokens/s, capacity 2000
    times = grant_times(limiter, fake, [500] * 10)
    assert times[:4] == [0.0] * 4
    assert times[4:] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])


def test_waits_for_the_tighter_bucket() -> None:
    fake = FakeTime()
    limiter = local(fake, rpm=600, tpm=6_000)  # 10 requests/s and 100 tokens/s, capacities 10 and 100
    times = grant_times(limiter, fake, [50, 50, 50] + [0] * 11)
    assert times[:2] == [0.0, 0.0]
    assert times[2] == pytest.approx(0.5)  # tokens were short; the request bucket refilled to 10
    assert times[3:12] == [pytest.approx(0.5)] * 9  # the other 9 requests of the burst
    assert times[12:] == pytest.approx([0.6, 0.7])  # then requests are short


def test_takes_both_buckets_together_or_neither() -> None:
    """A caller waiting for tokens must not hold a request slot meanwhile.

    At t=0 the first call empties the token bucket and leaves 9 requests. The second waits 1 s for
    tokens; had it taken its request slot first, the request bucket would be back to 10 at t=1 (the
    cap swallows the refill) instead of 9 after the grant, and 10 free calls would pass at t=1.
    """
    fake = FakeTime()
    limiter = local(fake, rpm=600, tpm=6_000)
    times = grant_times(limiter, fake, [100, 100] + [0] * 12)
    assert times[:2] == [0.0, pytest.approx(1.0)]
    assert times[2:11] == [pytest.approx(1.0)] * 9
    assert times[11] == pytest.approx(1.1)


def test_request_bigger_than_the_bucket_passes_when_full_and_leaves_debt() -> None:
    fake = FakeTime()
    limiter = local(fake, rpm=None, tpm=6_000)  # 100 tokens/s, capacity 100
    times = grant_times(limiter, fake, [50, 300, 300, 10])
    assert times[0] == 0.0
    assert times[1] == pytest.approx(0.5)  # waits until full, not forever
    assert times[2] == pytest.approx(3.5)  # the debt of 200 is paid back, then full again
    assert times[3] == pytest.approx(5.6)  # debt of 200 again, then 10 tokens


def test_capacity_below_one_request_still_gives_the_rate() -> None:
    fake = FakeTime()
    limiter = local(fake, rpm=30, tpm=None, burst=1.0)  # capacity 0.5 requests, one per 2 s
    assert grant_times(limiter, fake, [0] * 4) == pytest.approx([0.0, 2.0, 4.0, 6.0])


def test_concurrent_callers_are_served_in_arrival_order() -> None:
    fake = FakeTime()
    limiter = local(fake, rpm=600, tpm=None)

    async def scenario() -> list[int]:
        order: list[int] = []

        async def caller(n: int) -> None:
            await limiter.acquire(tokens=0)
            order.append(n)

        await asyncio.gather(*(caller(n) for n in range(40)))
        return order

    assert asyncio.run(scenario()) == list(range(40))
    assert fake.now == pytest.approx(3.0)
    assert len(fake.sleeps) == 30


def test_cancelled_waiter_takes_nothing_and_frees_the_line() -> None:
    limiter = LocalRateLimiter(requests_per_minute=60, input_tokens_per_minute=None, burst_seconds=1.0)

    async def scenario() -> float:
        await limiter.acquire(tokens=0)  # the one request of the burst
        waiter = asyncio.create_task(limiter.acquire(tokens=0))
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        started = time.monotonic()
        await limiter.acquire(tokens=0)
        return time.monotonic() - started

    assert 0.85 <= asyncio.run(scenario()) < 1.2


def test_real_time_forty_callers_at_1200_rpm() -> None:
    limiter = LocalRateLimiter(requests_per_minute=1200, input_tokens_per_minute=None, burst_seconds=0.25)

    async def scenario() -> float:
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire(tokens=10) for _ in range(40)))
        return time.monotonic() - started

    expected = (40 - 5) / 20  # capacity 5 at once, then 20/s
    assert expected - 0.05 <= asyncio.run(scenario()) <= expected + 0.3


def test_unlimited_returns_at_once() -> None:
    limiter = UnlimitedRateLimiter()

    async def scenario() -> float:
        started = time.monotonic()
        for _ in range(10_000):
            await limiter.acquire(tokens=1_000_000)
        await limiter.aclose()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0
    assert "no rate limit" in limiter.describe()
    assert isinstance(limiter, RateLimiter)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"requests_per_minute": 0, "input_tokens_per_minute": None}, id="zero-rate"),
        pytest.param({"requests_per_minute": None, "input_tokens_per_minute": -5}, id="negative-rate"),
        pytest.param({"requests_per_minute": 60, "input_tokens_per_minute": None, "burst_seconds": 0}, id="no-burst"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, float | None]) -> None:
    with pytest.raises(ValueError):
        LocalRateLimiter(**kwargs)


def test_negative_tokens_are_refused() -> None:
    limiter = LocalRateLimiter(requests_per_minute=60, input_tokens_per_minute=None)
    with pytest.raises(ValueError, match="tokens"):
        asyncio.run(limiter.acquire(tokens=-1))


def test_describe_names_the_rates_and_the_scope_of_the_limit() -> None:
    limiter = LocalRateLimiter(requests_per_minute=4000, input_tokens_per_minute=400_000, burst_seconds=1)
    text = limiter.describe()
    assert "4000 requests/min" in text and "400000 input tokens/min" in text and "this task only" in text


def test_scope_hides_the_key_and_separates_keys_and_models() -> None:
    key = "sk-ant-api03-secret-value"
    scope = limiter_scope(api_key=key, model="claude-haiku-4-5")
    assert len(scope) == 16 and int(scope, 16) >= 0
    assert key not in scope and "secret" not in scope
    assert scope == limiter_scope(api_key=key, model="claude-haiku-4-5")
    assert scope != limiter_scope(api_key=key, model="claude-sonnet-4-5")
    assert scope != limiter_scope(api_key=key + "x", model="claude-haiku-4-5")


def test_open_without_rates_is_unlimited_and_touches_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_lookup(conn_id: str) -> None:
        raise AssertionError("no connection should be looked up")

    monkeypatch.setattr(redis_client, "open_async_redis", no_lookup)
    limiter = asyncio.run(
        open_rate_limiter(
            requests_per_minute=None,
            input_tokens_per_minute=None,
            burst_seconds=1.0,
            redis_conn_id="judge_cache",
            api_key="k",
            model="m",
        )
    )
    assert isinstance(limiter, UnlimitedRateLimiter)


def test_open_without_the_connection_is_local(log_records: list[logging.LogRecord]) -> None:
    limiter = asyncio.run(
        open_rate_limiter(
            requests_per_minute=600,
            input_tokens_per_minute=None,
            burst_seconds=1.0,
            redis_conn_id="judgeflow_no_such_connection",
            api_key="k",
            model="m",
        )
    )
    assert isinstance(limiter, LocalRateLimiter)
    messages = [r.getMessage() for r in log_records]
    assert any("no Airflow connection 'judgeflow_no_such_connection'" in m for m in messages), messages
    assert not [r for r in log_records if r.levelno >= logging.WARNING]


def test_protocol_is_met_by_every_limiter() -> None:
    assert issubclass(LocalRateLimiter, RateLimiter)
    assert issubclass(RedisRateLimiter, RateLimiter)
    assert issubclass(UnlimitedRateLimiter, RateLimiter)
