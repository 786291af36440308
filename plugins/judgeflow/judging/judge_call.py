"""One judged request, start to finish: send, retry what is worth retrying, validate the verdict.

Carries out the retry policy (:data:`judgeflow.judging.retry.POLICY`) for each request. Before each
attempt the request waits for the shared rate limiter (requests and input tokens per minute, across
every task) and reserves its estimated cost in the budget; after it, the real cost is settled. Rate
limits (429) and overload (529) slow the whole task down through
:class:`~judgeflow.judging.concurrency.AdaptiveConcurrency`, and an exhausted
``anthropic-ratelimit-requests-remaining`` pauses it until the reset time; other transient failures
back off with jitter; a malformed verdict is asked for once more; a terminal error stops every call
of the task, so a bad key costs a handful of requests, not one per response.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from judgeflow.config import JudgeConfig
from judgeflow.errors import RateLimited, RejectedRequest, TransientJudgeError
from judgeflow.judging.budget import BudgetLedger, CostEstimator, NoBudget
from judgeflow.judging.classify import classify
from judgeflow.judging.concurrency import AdaptiveConcurrency
from judgeflow.judging.prompt import JudgeRequest
from judgeflow.judging.prompt_cache import CacheMinimumWatch, marks_cacheable
from judgeflow.judging.ratelimit import RateLimiter, UnlimitedRateLimiter
from judgeflow.judging.retry import Action, decide
from judgeflow.judging.verdict import Unscored, parse_verdict
from judgeflow.records import ErrorKind, Usage, Verdict
from judgeflow.rubric import Rubric

log = logging.getLogger(__name__)

#: With no success yet, this many rejected requests in a row mean every request is wrong.
REJECTIONS_BEFORE_TERMINAL = 5


@dataclass(frozen=True, slots=True)
class Judged:
    verdict: Verdict
    usage: Usage
    latency_ms: int
    attempts: int


@dataclass(frozen=True, slots=True)
class Failed:
    kind: ErrorKind
    reason: str
    attempts: int
    usage: Usage = field(default_factory=Usage)
    raw_reply: str | None = None


@dataclass(slots=True)
class CallStats:
    """Counters for the run summary and the benchmark."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    budget_refused: int = 0
    transient_errors: int = 0
    malformed_verdicts: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


class JudgeCaller:
    """Sends judge requests for one task; every call shares its limiter, counters and stop flag."""

    def __init__(
        self,
        client: Any,
        *,
        rubric: Rubric,
        config: JudgeConfig,
        concurrency: AdaptiveConcurrency,
        cost_of: Callable[[Usage], float],
        limiter: RateLimiter | None = None,
        budget: BudgetLedger | None = None,
        estimator: CostEstimator | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._rubric = rubric
        self._config = config
        self._concurrency = concurrency
        self._cost_of = cost_of
        self._limiter = limiter or UnlimitedRateLimiter()
        self._budget = budget or NoBudget()
        self._estimator = estimator
        self.budget_exhausted = False
        self._rng = rng or random.Random()
        self._sleep = sleep
        self.stats = CallStats()
        self.cache_watch = CacheMinimumWatch(rubric.model)
        self.stop_reason: str | None = None
        self._successes = 0
        self._rejections_in_a_row = 0

    async def judge(self, request: JudgeRequest) -> Judged | Failed:
        attempts = verdict_tries = 0
        spent = Usage()
        while True:
            if self.stop_reason is not None:
                return Failed(ErrorKind.TERMINAL, f"run stopped: {self.stop_reason}", attempts, spent)
            if self.budget_exhausted:
                return Failed(ErrorKind.BUDGET_EXHAUSTED, "budget cap reached; left for the next run", attempts, spent)
            attempts += 1
            reserved = self._estimator.estimate(request.params) if self._estimator else 0.0
            if not await self._budget.reserve(reserved):
                self._refuse_for_budget()
                continue
            billed = 0.0  # a request that failed is not billed
            try:
                async with self._concurrency.slot():
                    if self.stop_reason is not None:  # stopped while this call waited for a slot
                        continue
                    factor = self._estimator.tokenizer_factor if self._estimator else 1.0
                    await self._limiter.acquire(
                        tokens=CostEstimator.input_tokens(request.params, tokenizer_factor=factor)
                    )
                    started = time.monotonic()
                    self.stats.requests += 1
                    raw = await self._client.messages.with_raw_response.create(**request.params)
                    message = await raw.parse()
                    self._follow_headers(raw.headers)
                usage = usage_of(message)
                billed = self._cost_of(usage)
            except Exception as exc:
                outcome = await self._after_failure(exc, attempts)
                if outcome is None:
                    continue
                return Failed(outcome[0], outcome[1], attempts, spent)
            finally:
                # The reservation turns into the bill in one step: released first and billed after, the
                # ledger would show neither for a moment, and other tasks could reserve past the cap.
                await self._budget.settle(reserved, billed)
            latency_ms = int((time.monotonic() - started) * 1000)
            self._concurrency.on_success()
            self._successes += 1
            self._rejections_in_a_row = 0
            self.cache_watch.observe(usage, cacheable=marks_cacheable(request.params))
            if self._estimator:
                self._estimator.observe(usage)
            spent = spent + usage
            parsed = parse_verdict(list(message.content), self._rubric)
            if isinstance(parsed, Verdict):
                return Judged(parsed, spent, latency_ms, attempts)
            verdict_tries += 1
            self.stats.malformed_verdicts += 1
            if verdict_tries >= self._config.verdict_attempts:
                return Failed(ErrorKind.MALFORMED_VERDICT, parsed.reason, attempts, spent, parsed.raw_reply)
            self.stats.retries += 1
            log.debug("malformed verdict (%s); asking again", _short(parsed))

    async def _after_failure(self, exc: BaseException, attempts: int) -> tuple[ErrorKind, str] | None:
        """Carry out :func:`judgeflow.judging.retry.decide`: ``None`` means try again (after waiting)."""
        error = classify(exc)
        name = type(error).__name__
        self.stats.by_error[name] = self.stats.by_error.get(name, 0) + 1
        if isinstance(error, RateLimited):
            self.stats.rate_limited += 1
        elif isinstance(error, TransientJudgeError):
            self.stats.transient_errors += 1
        decision = decide(error, attempts=attempts, config=self._config, rng=self._rng)
        if decision.throttle:
            self._concurrency.on_throttled(decision.throttle_s)
        if decision.action is Action.STOP:
            self.stop(str(error))
            return ErrorKind.TERMINAL, str(error)
        if decision.action is Action.RECORD:
            if isinstance(error, RejectedRequest):
                self._rejections_in_a_row += 1
                if self._successes == 0 and self._rejections_in_a_row >= REJECTIONS_BEFORE_TERMINAL:
                    self.stop(f"every request rejected so far, last: {error}")
                return ErrorKind.JUDGE_ERROR, str(error)
            return ErrorKind.JUDGE_ERROR, f"gave up after {attempts} attempts: {error}"
        self.stats.retries += 1
        if decision.wait_s > 0:
            await self._sleep(decision.wait_s)
        return None

    def _refuse_for_budget(self) -> None:
        if not self.budget_exhausted:
            log.warning("budget cap reached: no more requests this task; the rest waits for the next run")
        self.budget_exhausted = True
        self.stats.budget_refused += 1

    def _follow_headers(self, headers: Any) -> None:
        """When the API says no requests remain, pause every call until its reset time."""
        remaining = headers.get("anthropic-ratelimit-requests-remaining")
        reset = headers.get("anthropic-ratelimit-requests-reset")
        if remaining is None or reset is None or int(remaining) > 0:
            return
        try:
            reset_at = dt.datetime.fromisoformat(reset.replace("Z", "+00:00"))
        except ValueError:
            return
        wait = (reset_at - dt.datetime.now(dt.UTC)).total_seconds()
        if wait > 0:
            self._concurrency.pause(min(wait, self._config.backoff_max_s))

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            log.error("stopping the run: %s", reason)
            self.stop_reason = reason


def usage_of(message: Any) -> Usage:
    """The reply's token counts; ``usage.cache_creation`` (when the API gives it) splits the cache
    writes by TTL, since a 1-hour write costs more than a 5-minute one."""
    usage = message.usage
    split = getattr(usage, "cache_creation", None)
    one_hour = getattr(split, "ephemeral_1h_input_tokens", None) if split is not None else None
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_write_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0,
        cache_read_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
        cache_write_1h_tokens=one_hour if isinstance(one_hour, int) else 0,
    )


def _short(unscored: Unscored) -> str:
    return unscored.reason[:200]
