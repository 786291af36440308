"""Score a stream of responses inside one task: cache first, each distinct input judged once.

The task streams its batch in chunks; at most ``4 x concurrency`` responses wait in memory at a
time, and the in-run dedupe remembers the last :data:`DEDUPE_WINDOW` inputs (older repeats are
served by the cache), so a score task's memory does not grow with the day's volume. Results
are handed to a sink (the warehouse) in chunks as they complete, so a killed task loses at most
one chunk of work, and that work is picked up again because the responses are still unscored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from judgeflow.config import Settings
from judgeflow.judging.budget import BudgetLedger, CostEstimator
from judgeflow.judging.concurrency import AdaptiveConcurrency
from judgeflow.judging.judge_call import CallStats, Failed, JudgeCaller, Judged
from judgeflow.judging.noise import ask_again, in_noise_sample
from judgeflow.judging.outcomes import OutcomeRecorder, response_key
from judgeflow.judging.pricing import cost_usd
from judgeflow.judging.prompt import build_request
from judgeflow.judging.ratelimit import RateLimiter
from judgeflow.judging.verdict_cache import VerdictCache
from judgeflow.records import ErrorKind, ErrorRecord, NoiseRecord, ResponseItem, ScoreRecord, Usage, Verdict
from judgeflow.rubric import Rubric

log = logging.getLogger(__name__)

FLUSH_EVERY = 200
PROGRESS_EVERY = 500
DEDUPE_WINDOW = 10_000


class ResultSink(Protocol):
    """Where finished records go; the warehouse in production."""

    def write(self, scores: Sequence[ScoreRecord], errors: Sequence[ErrorRecord]) -> None: ...


class NoiseSink(Protocol):
    """Where the noise sample's pairs go (``judge_noise``); written after the chunk's scores."""

    def write_noise(self, records: Sequence[NoiseRecord]) -> None: ...


@dataclass(slots=True)
class BatchTotals:
    """What one score task did; summed across tasks by the summary step."""

    items: int = 0
    scored: int = 0
    from_cache: int = 0
    errors: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    noise_asks: int = 0
    noise_cost_usd: float = 0.0
    calls: CallStats = field(default_factory=CallStats)
    max_in_flight: int = 0
    stopped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "scored": self.scored,
            "from_cache": self.from_cache,
            "errors": self.errors,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "cache_read_tokens": self.usage.cache_read_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "noise_asks": self.noise_asks,
            "noise_cost_usd": round(self.noise_cost_usd, 6),
            "requests": self.calls.requests,
            "retries": self.calls.retries,
            "rate_limited": self.calls.rate_limited,
            "budget_refused": self.calls.budget_refused,
            "max_in_flight": self.max_in_flight,
            "stopped": self.stopped,
        }


class BatchScorer:
    """Judges one task's responses; see the module docstring for the memory and loss guarantees."""

    def __init__(
        self,
        *,
        client: Any,
        rubric: Rubric,
        settings: Settings,
        cache: VerdictCache,
        sink: ResultSink,
        dag_run_id: str,
        limiter: RateLimiter | None = None,
        budget: BudgetLedger | None = None,
        noise_sink: NoiseSink | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._rubric = rubric
        self._settings = settings
        self._cache = cache
        self._sink = sink
        self._price = settings.price_for(rubric.model)
        judge = settings.judge
        self._concurrency = AdaptiveConcurrency(ceiling=judge.concurrency)
        self._caller = JudgeCaller(
            client,
            rubric=rubric,
            config=judge,
            concurrency=self._concurrency,
            cost_of=lambda usage: cost_usd(usage, self._price),
            limiter=limiter,
            budget=budget,
            estimator=CostEstimator(self._price, settings.budget),
        )
        self._admission = asyncio.Semaphore(4 * judge.concurrency)
        self._in_flight: OrderedDict[str, asyncio.Future[Judged | Failed]] = OrderedDict()
        self._scores: list[ScoreRecord] = []
        self._errors: list[ErrorRecord] = []
        self._cache_later: dict[str, Verdict] = {}
        self._noise_sink = noise_sink
        self._noise_rate = settings.noise.rate if noise_sink is not None else 0.0
        self._noise: list[NoiseRecord] = []
        self._noise_tasks: set[asyncio.Task[None]] = set()
        self._dag_run_id, self._now = dag_run_id, now
        self._outcomes = OutcomeRecorder(rubric, dag_run_id, settings.judge.max_response_chars, now)
        self.totals = BatchTotals(calls=self._caller.stats)

    async def run(self, chunks: Iterable[Sequence[ResponseItem]]) -> BatchTotals:
        tasks: set[asyncio.Task[None]] = set()
        iterator = iter(chunks)
        while (chunk := await asyncio.to_thread(next, iterator, None)) is not None:
            keyed = [(item, response_key(self._rubric, item)) for item in chunk]
            hits = await asyncio.to_thread(self._cache.get_many, sorted({k for _, k in keyed if k}))
            for item, key in keyed:
                self.totals.items += 1
                if key is None:
                    self._record_error(item, ErrorKind.INVALID_INPUT, "response is NULL or empty", 0)
                elif key in hits:
                    self._record_score(item, hits[key], Usage(), 0, cache_hit=True)
                    self._maybe_ask_again(item, hits[key])
                else:
                    await self._admission.acquire()
                    task = asyncio.create_task(self._judge_item(item, key))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            await self._flush_if_full()
        if tasks:
            await asyncio.gather(*tasks)
        if self._noise_tasks:
            await asyncio.gather(*self._noise_tasks)
        await self._flush(force=True)
        self.totals.stopped = self._caller.stop_reason
        self.totals.max_in_flight = self._concurrency.max_in_flight
        return self.totals

    async def _judge_item(self, item: ResponseItem, key: str) -> None:
        try:
            leader = key not in self._in_flight
            if leader:
                self._remember(key, asyncio.ensure_future(self._judge_once(item)))
            outcome = await self._in_flight[key]
            if isinstance(outcome, Judged):
                if leader:
                    self._record_score(item, outcome.verdict, outcome.usage, outcome.latency_ms, False)
                    self._cache_later[key] = outcome.verdict
                    self._maybe_ask_again(item, outcome.verdict)
                else:  # the same input twice in one run: judged once, the copy is a cache hit
                    self._record_score(item, outcome.verdict, Usage(), 0, cache_hit=True)
            else:
                usage = outcome.usage if leader else Usage()
                self._record_error(item, outcome.kind, outcome.reason, outcome.attempts, outcome.raw_reply)
                self._add_usage(usage)
            await self._flush_if_full()
        finally:
            self._admission.release()

    def _remember(self, key: str, judged: asyncio.Future[Judged | Failed]) -> None:
        """Keep the newest inputs for in-run dedupe; forget the oldest finished ones past the window."""
        self._in_flight[key] = judged
        while len(self._in_flight) > DEDUPE_WINDOW:
            oldest_key, oldest = next(iter(self._in_flight.items()))
            if not oldest.done():
                break
            del self._in_flight[oldest_key]

    async def _judge_once(self, item: ResponseItem) -> Judged | Failed:
        request = build_request(
            self._rubric,
            item,
            max_response_chars=self._settings.judge.max_response_chars,
            max_output_tokens=self._settings.judge.max_output_tokens,
            cache_ttl=self._settings.judge.cache_ttl,
        )
        return await self._caller.judge(request)

    def _maybe_ask_again(self, item: ResponseItem, first: Verdict) -> None:
        """Judge a response of the noise sample a second time, in the background (see
        :mod:`judgeflow.judging.noise`); its primary score is already recorded."""
        if not in_noise_sample(self._rubric.name, item.response_id, self._noise_rate):
            return
        task = asyncio.create_task(self._ask_again(item, first))
        self._noise_tasks.add(task)
        task.add_done_callback(self._noise_tasks.discard)

    async def _ask_again(self, item: ResponseItem, first: Verdict) -> None:
        record, usage = await ask_again(
            lambda: self._judge_once(item),
            first,
            response_id=item.response_id,
            rubric_name=self._rubric.name,
            rubric_version=self._rubric.version_key,
            dag_run_id=self._dag_run_id,
            cost_of=lambda u: cost_usd(u, self._price),
            now=self._now,
        )
        self.totals.noise_asks += 1
        self.totals.noise_cost_usd += self._add_usage(usage)
        self._noise.append(record)

    def _record_score(
        self, item: ResponseItem, verdict: Verdict, usage: Usage, latency_ms: int, cache_hit: bool
    ) -> None:
        cost = self._add_usage(usage)
        self.totals.scored += 1
        self.totals.from_cache += int(cache_hit)
        self._scores.append(
            self._outcomes.score(item, verdict, usage, cost_usd=cost, latency_ms=latency_ms, cache_hit=cache_hit)
        )

    def _record_error(
        self, item: ResponseItem, kind: ErrorKind, reason: str, attempts: int, raw: str | None = None
    ) -> None:
        self.totals.errors += 1
        self._errors.append(self._outcomes.error(item, kind, reason, attempts=attempts, raw_reply=raw))

    def _add_usage(self, usage: Usage) -> float:
        cost = cost_usd(usage, self._price)
        self.totals.usage = self.totals.usage + usage
        self.totals.cost_usd += cost
        return cost

    async def _flush_if_full(self) -> None:
        if len(self._scores) + len(self._errors) >= FLUSH_EVERY:
            await self._flush(force=False)

    async def _flush(self, *, force: bool) -> None:
        if not (self._scores or self._errors or self._cache_later or self._noise):
            return
        scores, errors, fresh, noise = self._scores, self._errors, self._cache_later, self._noise
        self._scores, self._errors, self._cache_later, self._noise = [], [], {}, []
        await asyncio.to_thread(self._sink.write, scores, errors)
        if noise and self._noise_sink is not None:  # after the scores: a noise row never outlives its score
            await asyncio.to_thread(self._noise_sink.write_noise, noise)
        if fresh:
            await asyncio.to_thread(self._cache.put_many, fresh)
        done = self.totals.scored + self.totals.errors
        if force or done // PROGRESS_EVERY != (done - len(scores) - len(errors)) // PROGRESS_EVERY:
            log.info(
                "progress: %d responses done of %d read so far (%d scored, %d from cache, %d errors), $%.4f",
                done,
                self.totals.items,
                self.totals.scored,
                self.totals.from_cache,
                self.totals.errors,
                self.totals.cost_usd,
            )
