"""AIMD concurrency: a hard cap on requests in flight, halving on throttles, climbing on success."""

from __future__ import annotations

import asyncio
import random

import pytest

from judgeflow.judging.concurrency import AdaptiveConcurrency


class InFlight:
    """Counts holders of a slot as the test sees them, independently of the limiter's own counter."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.done = 0
        self.over_limit = 0

    async def hold(self, limiter: AdaptiveConcurrency, seconds: float, *, succeed: bool) -> None:
        async with limiter.slot():
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.over_limit += int(self.now > int(limiter.limit))
            await asyncio.sleep(seconds)
            self.now -= 1
            self.done += 1
        if succeed:
            limiter.on_success()


async def crowd(limiter: AdaptiveConcurrency, tasks: int, *, seed: int = 0, succeed: bool = False) -> InFlight:
    rng = random.Random(seed)
    seen = InFlight()
    await asyncio.gather(*(seen.hold(limiter, rng.uniform(0.001, 0.006), succeed=succeed) for _ in range(tasks)))
    return seen


@pytest.mark.parametrize(
    ("ceiling", "tasks"),
    [
        pytest.param(1, 20, id="one"),
        pytest.param(4, 100, id="four"),
        pytest.param(16, 300, id="sixteen"),
    ],
)
def test_never_more_in_flight_than_the_limit(ceiling: int, tasks: int) -> None:
    async def scenario() -> tuple[InFlight, AdaptiveConcurrency]:
        limiter = AdaptiveConcurrency(ceiling=ceiling, start=ceiling)
        return await crowd(limiter, tasks), limiter

    seen, limiter = asyncio.run(scenario())
    assert seen.done == tasks
    assert seen.peak == ceiling  # reached, never passed
    assert seen.over_limit == 0
    assert limiter.max_in_flight == ceiling
    assert limiter.in_flight == 0


def test_never_above_the_ceiling_while_climbing_from_a_low_start() -> None:
    async def scenario() -> tuple[InFlight, AdaptiveConcurrency]:
        limiter = AdaptiveConcurrency(ceiling=6, start=1)
        return await crowd(limiter, 200, succeed=True), limiter

    seen, limiter = asyncio.run(scenario())
    assert seen.done == 200
    assert seen.over_limit == 0
    assert seen.peak == 6
    assert limiter.limit == 6.0


def test_a_lowered_limit_caps_new_slots() -> None:
    async def scenario() -> InFlight:
        limiter = AdaptiveConcurrency(ceiling=8, start=8)
        limiter.on_throttled(None)
        assert limiter.limit == 4.0
        return await crowd(limiter, 80)

    assert asyncio.run(scenario()).peak == 4


def test_start_below_the_ceiling() -> None:
    async def scenario() -> InFlight:
        limiter = AdaptiveConcurrency(ceiling=10, start=3)
        assert limiter.limit == 3.0
        return await crowd(limiter, 60)

    seen = asyncio.run(scenario())
    assert seen.peak == 3
    assert seen.over_limit == 0


def test_start_is_capped_at_the_ceiling() -> None:
    assert AdaptiveConcurrency(ceiling=2, start=10).limit <= 2.0


@pytest.mark.parametrize(
    ("ceiling", "floor", "limits"),
    [
        pytest.param(16, 1, [8.0, 4.0, 2.0, 1.0, 1.0, 1.0], id="down-to-one"),
        pytest.param(16, 3, [8.0, 4.0, 3.0, 3.0], id="floor-three"),
        pytest.param(5, 1, [2.5, 1.25, 1.0], id="fractional"),
        pytest.param(4, 4, [4.0, 4.0], id="floor-is-ceiling"),
    ],
)
def test_throttle_halves_and_stops_at_the_floor(ceiling: int, floor: int, limits: list[float]) -> None:
    limiter = AdaptiveConcurrency(ceiling=ceiling, floor=floor, start=ceiling)
    seen = []
    for _ in limits:
        limiter.on_throttled(None)
        seen.append(limiter.limit)
    assert seen == limits


def test_success_climbs_about_one_per_window_and_stops_at_the_ceiling() -> None:
    limiter = AdaptiveConcurrency(ceiling=6, start=6)
    for _ in range(4):
        limiter.on_throttled(None)
    assert limiter.limit == 1.0
    limiter.on_success()
    assert limiter.limit == 2.0  # a window of one request
    limiter.on_success()
    limiter.on_success()
    assert limiter.limit == pytest.approx(2.9)  # 2 + 1/2 + 1/2.5: a window of two
    history = [limiter.limit]
    for _ in range(100):
        limiter.on_success()
        history.append(limiter.limit)
    assert history == sorted(history)
    assert max(history) == 6.0
    assert limiter.limit == 6.0


def test_climb_back_raises_the_cap_on_slots() -> None:
    async def scenario() -> tuple[int, int]:
        limiter = AdaptiveConcurrency(ceiling=6, start=6)
        for _ in range(3):
            limiter.on_throttled(None)
        low = (await crowd(limiter, 30)).peak
        for _ in range(50):
            limiter.on_success()
        high = (await crowd(limiter, 60, seed=1)).peak
        return low, high

    assert asyncio.run(scenario()) == (1, 6)


def test_retry_after_pauses_new_slots() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveConcurrency(ceiling=4)
        started = loop.time()
        limiter.on_throttled(0.2)
        async with limiter.slot():
            return loop.time() - started

    assert 0.19 <= asyncio.run(scenario()) < 1.0


def test_every_waiter_honours_the_pause_and_a_shorter_one_does_not_shorten_it() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveConcurrency(ceiling=8)
        started = loop.time()
        limiter.on_throttled(0.2)
        limiter.on_throttled(0.01)
        entered: list[float] = []

        async def one() -> None:
            async with limiter.slot():
                entered.append(loop.time() - started)

        await asyncio.gather(*(one() for _ in range(6)))
        return entered

    entered = asyncio.run(scenario())
    assert len(entered) == 6
    assert min(entered) >= 0.19


def test_throttle_without_retry_after_does_not_pause() -> None:
    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveConcurrency(ceiling=4)
        limiter.on_throttled(None)
        limiter.on_throttled(0)
        started = loop.time()
        async with limiter.slot():
            return loop.time() - started

    assert asyncio.run(scenario()) < 0.05


def test_pause_does_not_interrupt_slots_already_held() -> None:
    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        limiter = AdaptiveConcurrency(ceiling=2)
        started = loop.time()
        inside = asyncio.Event()
        holder_done = 0.0

        async def holder() -> None:
            nonlocal holder_done
            async with limiter.slot():
                inside.set()
                await asyncio.sleep(0.02)
            holder_done = loop.time() - started

        task = asyncio.create_task(holder())
        await inside.wait()
        limiter.on_throttled(0.2)
        async with limiter.slot():
            newcomer = loop.time() - started
        await task
        return holder_done, newcomer

    holder_done, newcomer = asyncio.run(scenario())
    assert holder_done < 0.15
    assert newcomer >= 0.19


@pytest.mark.parametrize(
    ("ceiling", "floor"),
    [pytest.param(4, 0, id="floor-zero"), pytest.param(2, 3, id="floor-above-ceiling")],
)
def test_bad_bounds_are_refused(ceiling: int, floor: int) -> None:
    with pytest.raises(ValueError, match="need 1 <= floor"):
        AdaptiveConcurrency(ceiling=ceiling, floor=floor)
