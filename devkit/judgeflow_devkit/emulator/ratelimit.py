"""Token buckets for requests and input tokens per minute, and the headers the API reports.

Each bucket holds ``rate * burst_seconds / 60`` tokens and refills continuously. A request is let
through when every bucket holds its cost, or when a bucket is full (so a request bigger than the
whole bucket still goes through once, leaving the bucket in debt, as a real limiter must or such a
request could never succeed). Nothing is taken unless every bucket agrees.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import NamedTuple


class TokenBucket:
    """One continuously refilled bucket; times are monotonic seconds passed in by the caller."""

    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.limit = per_minute
        self.rate_per_s = per_minute / 60.0
        self.capacity = per_minute * burst_seconds / 60.0
        self.tokens = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` can be taken (0 now); call :meth:`refill` first."""
        if self.tokens >= cost or self.tokens >= self.capacity:
            return 0.0
        return (min(cost, self.capacity) - self.tokens) / self.rate_per_s

    def seconds_to_full(self) -> float:
        return max(0.0, self.capacity - self.tokens) / self.rate_per_s

    def reset(self, now: float) -> None:
        self.tokens = self.capacity
        self.updated = now


class Decision(NamedTuple):
    """Whether a request may proceed; if not, after how many whole seconds to retry."""

    allowed: bool
    retry_after: int
    limited_by: str | None


class RateLimiter:
    """The ``requests`` and ``input-tokens`` buckets of one emulated organisation."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None,
        input_tokens_per_minute: float | None,
        burst_seconds: float,
        now: float,
    ) -> None:
        self.buckets: dict[str, TokenBucket] = {}
        if requests_per_minute is not None:
            self.buckets["requests"] = TokenBucket(requests_per_minute, burst_seconds, now)
        if input_tokens_per_minute is not None:
            self.buckets["input-tokens"] = TokenBucket(input_tokens_per_minute, burst_seconds, now)

    def acquire(self, input_tokens: int, now: float) -> Decision:
        """Take one request and ``input_tokens`` tokens, or nothing and say how long to wait."""
        costs = {"requests": 1.0, "input-tokens": float(input_tokens)}
        waits: dict[str, float] = {}
        for name, bucket in self.buckets.items():
            bucket.refill(now)
            waits[name] = bucket.wait_for(costs[name])
        blocking = {name: wait for name, wait in waits.items() if wait > 0}
        if blocking:
            name = max(blocking, key=lambda n: blocking[n])
            return Decision(False, max(1, math.ceil(blocking[name])), name)
        for name, bucket in self.buckets.items():
            bucket.tokens -= costs[name]
        return Decision(True, 0, None)

    def headers(self, now: float, wall_now: float) -> dict[str, str]:
        """``anthropic-ratelimit-{requests,input-tokens}-{limit,remaining,reset}`` for set limits.

        ``reset`` is the RFC 3339 time at which the bucket is full again.
        """
        headers: dict[str, str] = {}
        for name, bucket in self.buckets.items():
            bucket.refill(now)
            prefix = f"anthropic-ratelimit-{name}"
            headers[f"{prefix}-limit"] = str(math.floor(bucket.limit))
            headers[f"{prefix}-remaining"] = str(max(0, math.floor(bucket.tokens)))
            headers[f"{prefix}-reset"] = rfc3339(wall_now + bucket.seconds_to_full())
        return headers

    def reset(self, now: float) -> None:
        for bucket in self.buckets.values():
            bucket.reset(now)


def rfc3339(epoch_s: float) -> str:
    """``2025-01-01T00:00:00Z``, rounded up to the second so the bucket is surely full by then."""
    moment = dt.datetime.fromtimestamp(math.ceil(epoch_s), tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
