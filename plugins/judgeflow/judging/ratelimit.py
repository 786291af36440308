"""One request-rate and input-token-rate limit, shared by every score task that uses the same key.

Why: mapped score tasks run side by side, often on several Celery workers, and each sends many
requests at once. The API's limits are per organisation and model, so a limit kept inside one task
lets N tasks send N times the rate and earn 429s. :class:`RedisRateLimiter` keeps the buckets in
Redis, so every task of every worker draws from the same two.

The model is two token buckets, ``requests`` and ``input tokens``, each holding
``rate * burst_seconds / 60`` and refilled continuously. :meth:`RateLimiter.acquire` waits until
both hold their cost and then takes from both at once: never one and then a wait for the other, so
a caller waiting for tokens does not sit on a request slot. A request costing more than a bucket's
capacity goes through when that bucket is full, leaving it in debt; otherwise it could never go.

Failure behaviour: ``acquire`` never raises because of Redis. The first Redis error is logged once as
a warning and the limiter carries on in-process (:class:`LocalRateLimiter`, same rates) for the rest
of the task; each worker then applies the full rate on its own, which the 429 handling absorbs.

Imports of ``redis`` and Airflow stay inside functions, so importing the engine stays cheap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger(__name__)

KEY_PREFIX = "judgeflow:ratelimit:"
KEY_TTL_MS = 120_000
"""Idle buckets vanish after this long (or once they would have refilled, if that is later)."""
_GRANT_SLACK_S = 1e-6
"""A wait shorter than this counts as none, so float rounding never costs an extra sleep."""

_LUA_TAKE = """
-- KEYS: one bucket per limit. ARGV[1]: minimum key TTL in ms, ARGV[2]: grant slack in seconds,
-- then per key: rate per second, capacity, cost. Returns the seconds to wait as a string; "0" when
-- every bucket was debited. Nothing is written unless every bucket agrees.
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local min_ttl_ms = tonumber(ARGV[1])
local slack = tonumber(ARGV[2])
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i])
  local capacity = tonumber(ARGV[3 * i + 1])
  local cost = tonumber(ARGV[3 * i + 2])
  local state = redis.call('HMGET', key, 'level', 'at')
  local level = tonumber(state[1])
  local at = tonumber(state[2])
  if level == nil or at == nil then
    level = capacity
  else
    level = math.min(capacity, level + math.max(0, now - at) * rate)
  end
  levels[i] = level
  wait = math.max(wait, (math.min(cost, capacity) - level) / rate)
end
if wait > slack then
  return string.format('%.6f', wait)
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i])
  local capacity = tonumber(ARGV[3 * i + 1])
  local left = levels[i] - tonumber(ARGV[3 * i + 2])
  local ttl_ms = math.max(min_ttl_ms, math.ceil((capacity - left) / rate * 1000) + 1000)
  redis.call('HSET', key, 'level', string.format('%.17g', left), 'at', string.format('%.6f', now))
  redis.call('PEXPIRE', key, ttl_ms)
end
return '0'
"""


@runtime_checkable
class RateLimiter(Protocol):
    """What the engine needs from a rate limit. ``acquire`` never raises for backend trouble."""

    async def acquire(self, *, tokens: int) -> None:
        """Wait until one request and ``tokens`` input tokens may be sent, then take them."""
        ...

    def describe(self) -> str:
        """One line for the task log: which limit, where, and whether it fell back."""
        ...

    async def aclose(self) -> None:
        """Release connections; safe to call twice."""
        ...


class _Bucket:
    """One continuously refilled bucket of ``per_minute`` units; ``level`` may go negative (debt)."""

    def __init__(self, name: str, per_minute: float, burst_seconds: float) -> None:
        if not per_minute > 0 or not math.isfinite(per_minute):
            raise ValueError(f"{name} per minute must be a positive number, got {per_minute}")
        self.name = name
        self.per_minute = float(per_minute)
        self.rate_per_s = per_minute / 60.0
        self.capacity = per_minute * burst_seconds / 60.0
        self.level = self.capacity
        self.updated: float | None = None

    def refill(self, now: float) -> None:
        if self.updated is not None:
            self.level = min(self.capacity, self.level + max(0.0, now - self.updated) * self.rate_per_s)
        self.updated = now

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` may be taken (0 or less: now); call :meth:`refill` first."""
        return (min(cost, self.capacity) - self.level) / self.rate_per_s


def _buckets(
    requests_per_minute: float | None, input_tokens_per_minute: float | None, burst_seconds: float
) -> tuple[_Bucket | None, _Bucket | None]:
    if not burst_seconds > 0 or not math.isfinite(burst_seconds):
        raise ValueError(f"burst_seconds must be a positive number, got {burst_seconds}")
    return (
        None if requests_per_minute is None else _Bucket("requests", requests_per_minute, burst_seconds),
        None if input_tokens_per_minute is None else _Bucket("input tokens", input_tokens_per_minute, burst_seconds),
    )


def _check_tokens(tokens: int) -> None:
    if tokens < 0:
        raise ValueError(f"tokens must not be negative, got {tokens}")


def _rates(requests: _Bucket | None, tokens: _Bucket | None, burst_seconds: float) -> str:
    parts = [
        "unlimited requests" if requests is None else f"{requests.per_minute:g} requests/min",
        "unlimited input tokens" if tokens is None else f"{tokens.per_minute:g} input tokens/min",
    ]
    return f"{', '.join(parts)}, burst {burst_seconds:g} s"


class UnlimitedRateLimiter:
    """No limit: ``acquire`` returns at once. ``reason`` says why, for the log."""

    def __init__(self, reason: str = "no rate is set") -> None:
        self.reason = reason

    async def acquire(self, *, tokens: int) -> None:
        return None

    def describe(self) -> str:
        return f"no rate limit ({self.reason})"

    async def aclose(self) -> None:
        return None


class LocalRateLimiter:
    """Both buckets in this process: the limit holds for one task, not across tasks or workers.

    Callers are served first come, first served: one waiter at a time sleeps until its computed
    grant time (no polling) while the rest queue behind it on a FIFO lock. ``clock`` (monotonic
    seconds) and ``sleep`` exist for tests.
    """

    def __init__(
        self,
        *,
        requests_per_minute: float | None,
        input_tokens_per_minute: float | None,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self._requests, self._tokens = _buckets(requests_per_minute, input_tokens_per_minute, burst_seconds)
        self._burst_seconds = burst_seconds
        self._clock = clock
        self._sleep = sleep
        self._turn = asyncio.Lock()

    async def acquire(self, *, tokens: int) -> None:
        _check_tokens(tokens)
        async with self._turn:
            while (wait := self._take_or_wait(tokens)) > 0:
                await self._sleep(wait)

    def _take_or_wait(self, tokens: int) -> float:
        """Take from both buckets and return 0, or take nothing and return the seconds to wait."""
        now = self._clock()
        wait = 0.0
        for bucket, cost in ((self._requests, 1), (self._tokens, tokens)):
            if bucket is not None:
                bucket.refill(now)
                wait = max(wait, bucket.wait_for(cost))
        if wait > _GRANT_SLACK_S:
            return wait
        for bucket, cost in ((self._requests, 1), (self._tokens, tokens)):
            if bucket is not None:
                bucket.level -= cost
        return 0.0

    def describe(self) -> str:
        rates = _rates(self._requests, self._tokens, self._burst_seconds)
        return f"in-process rate limit: {rates} (this task only)"

    async def aclose(self) -> None:
        return None


class RedisRateLimiter:
    """Both buckets in Redis under ``judgeflow:ratelimit:{scope}:requests`` / ``:tokens``.

    One Lua script, loaded once and run with EVALSHA, checks and debits both buckets atomically
    using the Redis server's clock, so workers' clocks do not matter; an acquire that need not wait
    is one round trip. Within this process callers queue first come, first served and only the
    one at the front asks Redis, sleeping for the wait the script returns. The limiter owns
    ``client`` and closes it in :meth:`aclose`; its timeouts are the caller's choice (see
    :func:`open_rate_limiter`). On the first Redis error it warns once and goes on with a
    :class:`LocalRateLimiter` of the same rates for the rest of the task.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        scope: str,
        requests_per_minute: float | None,
        input_tokens_per_minute: float | None,
        burst_seconds: float = 1.0,
    ) -> None:
        self._requests, self._tokens = _buckets(requests_per_minute, input_tokens_per_minute, burst_seconds)
        self._client = client
        self._scope = scope
        self._burst_seconds = burst_seconds
        self._script = client.register_script(_LUA_TAKE)
        self._limits = [
            (f"{KEY_PREFIX}{scope}:{suffix}", bucket, suffix == "requests")
            for bucket, suffix in ((self._requests, "requests"), (self._tokens, "tokens"))
            if bucket is not None
        ]
        self._turn = asyncio.Lock()
        self._fallback: LocalRateLimiter | None = None
        self._fallback_reason: str | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        """The Redis keys of this limiter's buckets."""
        return tuple(key for key, _, _ in self._limits)

    async def acquire(self, *, tokens: int) -> None:
        _check_tokens(tokens)
        if not self._limits:
            return
        async with self._turn:
            while (fallback := self._fallback) is None:
                try:
                    wait = await self._take_or_wait(tokens)
                except Exception as exc:  # the contract: a limiter never fails the run
                    self._fall_back(exc)
                    continue
                if wait <= 0:
                    return
                await asyncio.sleep(wait)
        await fallback.acquire(tokens=tokens)

    async def _take_or_wait(self, tokens: int) -> float:
        """One script run: 0 when both buckets were debited, else the seconds to wait."""
        args: list[float] = [KEY_TTL_MS, _GRANT_SLACK_S]
        for _, bucket, is_requests in self._limits:
            args += [bucket.rate_per_s, bucket.capacity, 1 if is_requests else tokens]
        keys = [key for key, _, _ in self._limits]
        answer = await self._script(keys=keys, args=args, client=self._client)
        return float(answer)

    def _fall_back(self, exc: BaseException) -> None:
        self._fallback_reason = _reason(exc)
        self._fallback = LocalRateLimiter(
            requests_per_minute=None if self._requests is None else self._requests.per_minute,
            input_tokens_per_minute=None if self._tokens is None else self._tokens.per_minute,
            burst_seconds=self._burst_seconds,
        )
        log.warning(
            "Rate limit: %s failed (%s); limiting in-process for the rest of this task, so this "
            "task no longer shares the limit with other tasks",
            self._where(),
            self._fallback_reason,
        )

    def _where(self) -> str:
        return f"Redis at {_address(self._client)} (scope {self._scope})"

    def describe(self) -> str:
        rates = _rates(self._requests, self._tokens, self._burst_seconds)
        if self._fallback_reason is not None:
            return (
                f"in-process rate limit: {rates} (fell back from {self._where()} after an error: "
                f"{self._fallback_reason})"
            )
        return f"shared rate limit in {self._where()}: {rates}"

    async def aclose(self) -> None:
        try:
            await self._client.aclose()
        except Exception as exc:  # closing a broken connection is not worth a failure
            log.debug("Rate limit: closing %s failed (%s)", self._where(), _reason(exc))


def limiter_scope(*, api_key: str, model: str) -> str:
    """The Redis scope for one (API key, model): 16 hex digits of a sha256, never the key itself."""
    canonical = json.dumps(["judgeflow-ratelimit", api_key, model], ensure_ascii=True)
    return sha256(canonical.encode("ascii")).hexdigest()[:16]


async def open_rate_limiter(
    *,
    requests_per_minute: float | None,
    input_tokens_per_minute: float | None,
    burst_seconds: float,
    redis_conn_id: str,
    api_key: str,
    model: str,
) -> RateLimiter:
    """The limiter a score task should use; raises only for invalid rates.

    Both rates unset → :class:`UnlimitedRateLimiter`. The Airflow connection ``redis_conn_id``
    exists and its Redis answers a PING (:mod:`judgeflow.judging.redis_client`) → :class:`RedisRateLimiter`,
    scoped by :func:`limiter_scope`. No such connection → :class:`LocalRateLimiter`, logged; an
    unusable connection or an unreachable Redis → :class:`LocalRateLimiter` and a warning.
    """
    from judgeflow.judging.redis_client import open_async_redis

    rates: dict[str, Any] = {
        "requests_per_minute": requests_per_minute,
        "input_tokens_per_minute": input_tokens_per_minute,
        "burst_seconds": burst_seconds,
    }
    limiter: RateLimiter
    if requests_per_minute is None and input_tokens_per_minute is None:
        limiter = UnlimitedRateLimiter("requests_per_minute and input_tokens_per_minute are unset")
    else:
        local = LocalRateLimiter(**rates)  # validates the rates before any I/O
        client = await open_async_redis(redis_conn_id)
        if client is None or not await _load_script(client):
            limiter = local
        else:
            limiter = RedisRateLimiter(client, scope=limiter_scope(api_key=api_key, model=model), **rates)
    log.info("Rate limit: %s", limiter.describe())
    return limiter


async def _load_script(client: redis.asyncio.Redis) -> bool:
    """Load the Lua script now, so even the first acquire is one round trip; close the client if not."""
    from judgeflow.judging.redis_client import close_quietly

    try:
        await client.script_load(_LUA_TAKE)
    except Exception as exc:
        log.warning(
            "Rate limit: loading the script into Redis at %s failed (%s); limiting in-process, so "
            "each task applies the full rate on its own",
            _address(client),
            _reason(exc),
        )
        await close_quietly(client)
        return False
    return True


def _address(client: redis.asyncio.Redis) -> str:
    from judgeflow.judging.redis_client import address

    return address(client)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


__all__ = [
    "LocalRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "UnlimitedRateLimiter",
    "limiter_scope",
    "open_rate_limiter",
]
