"""Everything one emulated API keeps between requests, behind one lock.

The HTTP layer calls :meth:`EmulatorState.admit` on arrival (auth was checked; parse, rate limit,
fault draw) and :meth:`EmulatorState.complete` after the latency (prompt cache, reply, usage).
Each is a short synchronous section under a :class:`threading.Lock`, so the runner's
``stats()``/``reset()`` may be called from the test's thread while the server's loop runs.
Message Batches live in :attr:`EmulatorState.batches`, behind the store's own lock; the store
judges each batch request through :meth:`EmulatorState.judge_at`, the live path's parse and
reply code without its rate limits, latency and faults, sharing the organisation's prompt cache.
"""

from __future__ import annotations

import hmac
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from judgeflow_devkit.emulator.batches import BatchStore
from judgeflow_devkit.emulator.config import EmulatorConfig
from judgeflow_devkit.emulator.envelope import ApiError
from judgeflow_devkit.emulator.faults import Fault, FaultInjector, Malformation
from judgeflow_devkit.emulator.prompt_cache import PromptCache
from judgeflow_devkit.emulator.ratelimit import RateLimiter
from judgeflow_devkit.emulator.reply import Noise, build_reply
from judgeflow_devkit.emulator.request import JudgeRequest, parse_request
from judgeflow_devkit.emulator.stats import Stats


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let in: what to answer, when it arrived, and how long to wait before answering."""

    request: JudgeRequest
    arrived_at: float
    delay_s: float
    fault: Fault
    malformation: Malformation | None


class EmulatorState:
    """Rate-limit buckets, fault RNG, prompt cache and stats of one emulated organisation."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self.stats = Stats()
        self.faults = FaultInjector(config)
        self.cache = PromptCache(config.cache_ttl_s)
        self.limiter = RateLimiter(
            requests_per_minute=config.requests_per_minute,
            input_tokens_per_minute=config.input_tokens_per_minute,
            burst_seconds=config.burst_seconds,
            now=clock(),
        )
        self._latency_rng = random.Random(f"{config.seed}:latency")
        self._noise = Noise(config.score_noise, random.Random(f"{config.seed}:noise"))
        self.batches = BatchStore(config, judge=self.judge_at, clock=clock, wall_clock=wall_clock)

    def authenticate(self, headers: Mapping[str, str]) -> None:
        """Accept ``x-api-key`` or ``Authorization: Bearer``; any key when none is configured."""
        key = headers.get("x-api-key")
        if not key:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else ""
        if not key:
            raise ApiError("authentication_error", "x-api-key header is required")
        expected = self.config.api_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            raise ApiError("authentication_error", "invalid x-api-key")

    def started(self) -> None:
        with self._lock:
            self.stats.started(self.clock())

    def finished(self, status: int) -> None:
        with self._lock:
            self.stats.finished(status, self.clock())

    def admit(self, body: Any) -> Admission:
        """Parse, rate-limit and draw a fault; raise :class:`ApiError` for a 400, 429 or 529.

        The input-tokens bucket is charged the tokens not read from the prompt cache, as the real
        API's ITPM limit does for current models; the fault RNG is drawn only for admitted requests.
        """
        request = parse_request(body)
        min_tokens = self.config.min_cacheable_for(request.model)
        with self._lock:
            now = self.clock()
            cached = self.cache.peek(request.breakpoints, min_tokens=min_tokens, now=now)
            decision = self.limiter.acquire(request.input_tokens - cached, now)
            if not decision.allowed:
                self.stats.rate_limited += 1
                raise ApiError(
                    "rate_limit_error",
                    f"This request would exceed the rate limit for {decision.limited_by} per minute.",
                    headers={"retry-after": str(decision.retry_after)},
                )
            draw = self.faults.draw()
            self.stats.fault(draw.fault)
            delay = self.config.hang_seconds if draw.fault is Fault.HANG else self._latency()
        if draw.fault is Fault.RATE_LIMIT:
            raise ApiError("rate_limit_error", "Injected rate limit.", headers={"retry-after": "1"})
        if draw.fault is Fault.OVERLOADED:
            raise ApiError("overloaded_error", "Overloaded")
        return Admission(request, now, delay, draw.fault, draw.malformation)

    def complete(self, admission: Admission) -> dict[str, Any]:
        """The ``message`` for an admitted request; raise :class:`ApiError` for an injected 500."""
        if admission.fault is Fault.API_ERROR:
            raise ApiError("api_error", "Internal server error")
        request = admission.request
        with self._lock:
            now = self.clock()
            cache = self.cache.account(
                request.breakpoints,
                min_tokens=self.config.min_cacheable_for(request.model),
                arrived_at=admission.arrived_at,
                now=now,
            )
            reply = build_reply(
                request,
                cache=cache,
                malformation=admission.malformation,
                obey_injections=self.config.obey_injections,
                noise=self._noise,
            )
            self.stats.usage(reply, request.model)
        return reply.body

    def judge_at(self, body: Any, at: float) -> dict[str, Any]:
        """The ``message`` for one batch request processed at monotonic time ``at``: the live
        endpoint's parse, prompt-cache accounting and reply, with no rate limit, latency or fault.
        Raise :class:`ApiError` (400) for a body the live endpoint would refuse."""
        request = parse_request(body)
        with self._lock:
            cache = self.cache.account(
                request.breakpoints,
                min_tokens=self.config.min_cacheable_for(request.model),
                arrived_at=at,
                now=at,
            )
            reply = build_reply(request, cache=cache, obey_injections=self.config.obey_injections, noise=self._noise)
            self.stats.bill(reply, request.model, batch=True)
        return reply.body

    def ratelimit_headers(self) -> dict[str, str]:
        with self._lock:
            return self.limiter.headers(self.clock(), self._wall_clock())

    def snapshot(self) -> dict[str, Any]:
        """The stats, with the batch store's counters (read after this lock is released)."""
        with self._lock:
            snapshot = self.stats.snapshot()
        return {**snapshot, **self.batches.counters()}

    def reset(self) -> None:
        """Zero the stats, empty the prompt cache, refill the buckets, replay the fault RNG and
        forget the batches: the state of a freshly started server, so benchmark runs compare."""
        with self._lock:
            self.stats.reset()
            self.cache.clear()
            self.limiter.reset(self.clock())
            self.faults.reset()
            self._latency_rng = random.Random(f"{self.config.seed}:latency")
            self._noise = Noise(self.config.score_noise, random.Random(f"{self.config.seed}:noise"))
        self.batches.clear()

    def _latency(self) -> float:
        median, sigma = self.config.latency_median_s, self.config.latency_sigma
        if median <= 0:
            return 0.0
        return median * math.exp(sigma * self._latency_rng.gauss(0.0, 1.0)) if sigma else median
