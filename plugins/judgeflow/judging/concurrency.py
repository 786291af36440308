"""Adaptive concurrency inside one score task: slow start, then additive increase, multiplicative decrease.

A task starts with a few requests in flight and doubles them every round trip while calls succeed
(slow start: a bad key or a dead endpoint costs a handful of requests, not a full window). After
the first 429 or 529 the limit halves and from then on climbs by about one per round trip, and
every caller waits out a ``retry-after`` before sending again. This keeps a task at the API's
ceiling without hammering it, and lets it climb back when the errors stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

#: Requests in flight when a task starts, before slow start has seen any reply.
INITIAL_WINDOW = 4


class AdaptiveConcurrency:
    """An AIMD limit on requests in flight, shared by every call of one task."""

    def __init__(
        self,
        *,
        ceiling: int,
        floor: int = 1,
        start: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor ({floor}) <= ceiling ({ceiling})")
        self.ceiling = ceiling
        self.floor = floor
        self.limit = float(min(ceiling, start if start is not None else INITIAL_WINDOW))
        self.slow_start = True
        self.in_flight = 0
        self.max_in_flight = 0
        self._pause_until = 0.0
        self._clock = clock
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one request slot; waits for room under the limit and for any pause to end."""
        async with self._changed:
            while True:
                wait = self._pause_until - self._clock()
                if wait > 0:
                    await self._sleep_unlocked(wait)
                    continue
                if self.in_flight < int(self.limit):
                    break
                await self._changed.wait()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    def on_success(self) -> None:
        """Slow start: +1 per success (doubling per round trip); after a throttle, +1 per window."""
        step = 1.0 if self.slow_start else 1.0 / max(self.limit, 1.0)
        self.limit = min(float(self.ceiling), self.limit + step)

    def on_throttled(self, retry_after: float | None) -> None:
        """Multiplicative decrease, and a pause for everyone if the API named one."""
        self.slow_start = False
        self.limit = max(float(self.floor), self.limit / 2)
        if retry_after:
            self.pause(retry_after)

    def pause(self, seconds: float) -> None:
        """Hold back new requests for ``seconds`` without changing the limit."""
        self._pause_until = max(self._pause_until, self._clock() + seconds)

    async def _sleep_unlocked(self, seconds: float) -> None:
        self._changed.release()
        try:
            await asyncio.sleep(seconds)
        finally:
            await self._changed.acquire()
