"""The judge engine end to end against the emulator: exact scores, retries, stops, dedup and the cache.

The only stand-in is the emulator, a real HTTP server; the client is the unmodified
``anthropic.AsyncAnthropic`` with its own retries off, so every retry counted here is the engine's.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anthropic
import pytest

from judgeflow.config import JudgeConfig, Settings
from judgeflow.judging.budget import CostEstimator
from judgeflow.judging.concurrency import AdaptiveConcurrency
from judgeflow.judging.judge_call import Failed, JudgeCaller, Judged
from judgeflow.judging.pricing import cost_usd
from judgeflow.judging.prompt import JudgeRequest, build_request
from judgeflow.judging.runner import BatchScorer, BatchTotals
from judgeflow.judging.verdict_cache import EmbeddedVerdictCache, NullVerdictCache, VerdictCache
from judgeflow.records import ErrorKind, ErrorRecord, ResponseItem, ScoreRecord, Usage
from judgeflow.rubric import Rubric, load_rubric
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer, emulated_rationale, emulated_scores
from tests.support import ROOT

RUBRIC: Rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
NAMES = RUBRIC.criterion_names
FAST_BACKOFF: dict[str, Any] = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}
RUN_ID = "manual__2025-01-01T00:00:00+00:00"
PRICE = Settings().price_for(RUBRIC.model)


class CollectingSink:
    """The test's ResultSink: keeps every record it is handed, and how many writes there were."""

    def __init__(self) -> None:
        self.scores: list[ScoreRecord] = []
        self.errors: list[ErrorRecord] = []
        self.writes = 0

    def write(self, scores: Sequence[ScoreRecord], errors: Sequence[ErrorRecord]) -> None:
        self.writes += 1
        self.scores.extend(scores)
        self.errors.extend(errors)

    def ids(self) -> Counter[Any]:
        return Counter([r.response_id for r in self.scores] + [r.response_id for r in self.errors])


def settings(**judge: Any) -> Settings:
    return Settings(judge=JudgeConfig(**{**FAST_BACKOFF, **judge}))


def responses(count: int, *, tag: str = "r") -> list[ResponseItem]:
    return [
        ResponseItem(
            response_id=i,
            question=f"Question {i}: where is order {i}?",
            context="Orders ship within two days." if i % 2 else None,
            response=f"[{tag}] Order {i} shipped on Monday and arrives by Thursday.",
        )
        for i in range(count)
    ]


def chunked(items: Sequence[ResponseItem], size: int) -> Iterator[Sequence[ResponseItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def client_for(server: EmulatorServer, *, api_key: str = "test-key", timeout: float = 5.0) -> Any:
    return anthropic.AsyncAnthropic(api_key=api_key, base_url=server.url, max_retries=0, timeout=timeout)


async def _score(
    server: EmulatorServer,
    chunks: Iterable[Sequence[ResponseItem]],
    *,
    config: Settings,
    cache: VerdictCache,
    api_key: str,
    timeout: float,
) -> tuple[BatchTotals, CollectingSink]:
    sink = CollectingSink()
    async with client_for(server, api_key=api_key, timeout=timeout) as client:
        scorer = BatchScorer(client=client, rubric=RUBRIC, settings=config, cache=cache, sink=sink, dag_run_id=RUN_ID)
        totals = await scorer.run(chunks)
    return totals, sink


def score(
    server: EmulatorServer,
    items: Sequence[ResponseItem],
    *,
    config: Settings | None = None,
    cache: VerdictCache | None = None,
    chunk: int = 50,
    api_key: str = "test-key",
    timeout: float = 5.0,
) -> tuple[BatchTotals, CollectingSink]:
    return asyncio.run(
        _score(
            server,
            chunked(items, chunk),
            config=config or settings(concurrency=8),
            cache=cache if cache is not None else NullVerdictCache(),
            api_key=api_key,
            timeout=timeout,
        )
    )


def expected_scores(item: ResponseItem) -> dict[str, int]:
    assert item.response is not None
    return emulated_scores(item.response, NAMES, RUBRIC.scale.min, RUBRIC.scale.max)


def assert_exact(record: ScoreRecord, item: ResponseItem) -> None:
    scores = expected_scores(item)
    assert {name: c.score for name, c in record.criteria.items()} == scores
    assert record.overall == RUBRIC.overall(scores)


def emulator(**knobs: Any) -> EmulatorServer:
    return EmulatorServer(EmulatorConfig(**{"latency_median_s": 0.005, **knobs}))


# --- BatchScorer -------------------------------------------------------------------------------


def test_scores_equal_the_emulated_judge_and_cost_is_priced_from_usage() -> None:
    items = responses(24)
    # a low cacheable minimum so the system prompt is written to and read from the prompt cache
    with emulator(min_cacheable_tokens={"claude-haiku-4-5": 100}) as server:
        totals, sink = score(server, items)
        stats = server.stats()
    by_id = {item.response_id: item for item in items}
    assert sink.errors == []
    assert sorted(r.response_id for r in sink.scores) == sorted(by_id)
    for record in sink.scores:
        assert_exact(record, by_id[record.response_id])
        assert all(c.rationale == emulated_rationale(n, c.score) for n, c in record.criteria.items())
        assert record.cost_usd == cost_usd(record.usage, PRICE) > 0
        assert record.usage.input_tokens > 0 and record.usage.output_tokens > 0
        assert (record.rubric_name, record.rubric_version) == ("helpfulness", RUBRIC.version_key)
        assert (record.model, record.dag_run_id) == ("claude-haiku-4-5", RUN_ID)
        assert not record.cache_hit and not record.truncated
        assert record.latency_ms >= 0
    total_usage = sum((r.usage for r in sink.scores), Usage())
    assert total_usage.cache_read_tokens > 0  # the cost formula met every kind of token
    assert totals.usage == total_usage
    assert totals.cost_usd == pytest.approx(sum(r.cost_usd for r in sink.scores), abs=1e-9)
    assert (totals.items, totals.scored, totals.from_cache, totals.errors) == (24, 24, 0, 0)
    assert sink.writes >= 1
    assert totals.stopped is None
    assert stats["requests_total"] == totals.calls.requests == 24
    assert stats["input_tokens_total"] == total_usage.input_tokens
    assert stats["output_tokens_total"] == total_usage.output_tokens
    assert stats["cache_read_tokens_total"] == total_usage.cache_read_tokens
    assert stats["cache_creation_tokens_total"] == total_usage.cache_write_tokens


def test_quality_markers_steer_scores_to_the_scale_ends() -> None:
    items = [
        ResponseItem(1, "q", None, "Great answer [[quality:high]]"),
        ResponseItem(2, "q", None, "Bad answer [[quality:low]]"),
    ]
    with emulator() as server:
        _, sink = score(server, items)
    overall = {r.response_id: r.overall for r in sink.scores}
    assert overall == {1: 5.0, 2: 1.0}


def test_truncated_response_is_flagged_on_its_score() -> None:
    items = [ResponseItem(1, "q", None, "long " * 100), ResponseItem(2, "q", None, "short")]
    with emulator() as server:
        _, sink = score(server, items, config=settings(concurrency=2, max_response_chars=100))
    truncated = {r.response_id: r.truncated for r in sink.scores}
    assert truncated == {1: True, 2: False}


def test_faults_end_every_response_in_exactly_one_record() -> None:
    # Each injected 429 carries ``retry-after: 1`` and the engine pauses every call for it, so a
    # 20 % 429 rate costs ~40 s of honest waiting over 150 responses; 4 % keeps the mix and the run short.
    items = responses(150, tag="faults")
    knobs = {
        "rate_429": 0.04,
        "rate_529": 0.05,
        "rate_500": 0.02,
        "rate_malformed": 0.05,
        "rate_hang": 0.02,
        "hang_seconds": 2.0,
        "seed": 11,
    }
    with emulator(**knobs) as server:
        totals, sink = score(server, items, config=settings(concurrency=16), chunk=40, timeout=0.5)
        stats = server.stats()
    by_id = {item.response_id: item for item in items}
    seen = sink.ids()
    assert set(seen) == set(by_id)
    assert max(seen.values()) == 1  # no response twice
    for error in sink.errors:
        assert isinstance(error.kind, ErrorKind)
        assert error.kind in (ErrorKind.JUDGE_ERROR, ErrorKind.MALFORMED_VERDICT)
        assert error.attempts >= 1 and error.reason
    for record in sink.scores:
        assert_exact(record, by_id[record.response_id])
    assert totals.items == 150 == totals.scored + totals.errors
    assert totals.stopped is None
    assert totals.calls.retries > 0
    assert totals.calls.rate_limited > 0
    assert totals.calls.transient_errors > 0
    assert stats["faults"]["429"] > 0 and stats["faults"]["hang"] > 0
    assert totals.calls.requests == stats["requests_total"] > 150


def test_heavy_rate_limiting_slows_down_but_loses_nothing() -> None:
    items = responses(30, tag="throttled")
    with emulator(rate_429=0.2, seed=5) as server:
        totals, sink = score(server, items, config=settings(concurrency=8))
        stats = server.stats()
    by_id = {item.response_id: item for item in items}
    assert sink.errors == []
    assert sorted(r.response_id for r in sink.scores) == sorted(by_id)
    for record in sink.scores:
        assert_exact(record, by_id[record.response_id])
    assert totals.calls.rate_limited == stats["faults"]["429"] > 0
    assert totals.calls.requests == stats["requests_total"] == 30 + stats["faults"]["429"]


@pytest.mark.parametrize("verdict_attempts", [pytest.param(1, id="once"), pytest.param(2, id="twice")])
def test_always_malformed_verdicts_are_errors_after_exactly_verdict_attempts(verdict_attempts: int) -> None:
    items = responses(12, tag="malformed")
    with emulator(rate_malformed=1.0) as server:
        totals, sink = score(server, items, config=settings(concurrency=4, verdict_attempts=verdict_attempts))
        stats = server.stats()
    assert sink.scores == []
    assert sorted(e.response_id for e in sink.errors) == [i.response_id for i in items]
    for error in sink.errors:
        assert error.kind is ErrorKind.MALFORMED_VERDICT
        assert error.attempts == verdict_attempts
        assert "completeness" in error.reason  # the emulator breaks the last criterion
        assert error.raw_reply
    assert stats["requests_total"] == 12 * verdict_attempts
    assert totals.calls.malformed_verdicts == 12 * verdict_attempts
    assert totals.usage.output_tokens > 0  # malformed replies were still paid for
    assert totals.cost_usd > 0


@pytest.mark.parametrize("concurrency", [pytest.param(4, id="c4"), pytest.param(16, id="c16")])
def test_wrong_api_key_stops_the_run_after_a_handful_of_requests(concurrency: int) -> None:
    items = responses(100, tag="auth")
    with emulator(api_key="right") as server:
        totals, sink = score(server, items, config=settings(concurrency=concurrency), chunk=25, api_key="wrong")
        stats = server.stats()
    assert totals.stopped is not None and "401" in totals.stopped
    assert sink.scores == []
    assert sorted(e.response_id for e in sink.errors) == list(range(100))
    assert {e.kind for e in sink.errors} == {ErrorKind.TERMINAL}
    assert 1 <= stats["requests_total"] <= min(concurrency, 4) + 2  # a handful, not a window or a batch
    assert stats["by_status"] == {"401": stats["requests_total"]}


def test_duplicates_in_one_run_are_judged_once() -> None:
    distinct = responses(10, tag="dup")
    copies = [ResponseItem(100 + n, item.question, item.context, item.response) for n, item in enumerate(distinct * 2)]
    items = distinct + copies
    random.Random(3).shuffle(items)
    with emulator() as server:
        totals, sink = score(server, items, chunk=7)
        stats = server.stats()
    assert stats["requests_total"] == 10
    assert len(sink.scores) == 30 and sink.errors == []
    assert max(sink.ids().values()) == 1
    fresh = [r for r in sink.scores if not r.cache_hit]
    hits = [r for r in sink.scores if r.cache_hit]
    assert len(fresh) == 10 and len(hits) == 20
    assert all(r.usage == Usage() and r.cost_usd == 0.0 and r.latency_ms == 0 for r in hits)
    text_of = {item.response_id: item.response for item in items}
    fresh_overall = {text_of[r.response_id]: r.overall for r in fresh}
    assert len(fresh_overall) == 10
    assert all(r.overall == fresh_overall[text_of[r.response_id]] for r in hits)
    assert (totals.scored, totals.from_cache) == (30, 20)
    assert totals.cost_usd == pytest.approx(sum(r.cost_usd for r in fresh), abs=1e-9)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"rate_500": 1.0}, id="every-request-fails"),
        pytest.param({"rate_malformed": 1.0}, id="every-verdict-malformed"),
    ],
)
def test_repeated_inputs_with_a_failing_judge_end_in_exactly_one_error_each(knobs: dict[str, Any]) -> None:
    """Nothing lost with repeats: the copies of an input whose judging failed get an error each,
    like the copies of a judged input get a score each. (Recording the failure only for the first
    copy once left 5 of 10 responses with neither.)"""
    distinct = responses(5, tag="fail")
    copies = [ResponseItem(100 + n, item.question, item.context, item.response) for n, item in enumerate(distinct)]
    items = distinct + copies
    random.Random(4).shuffle(items)
    with emulator(**knobs) as server:
        totals, sink = score(server, items, config=settings(concurrency=4, max_attempts=2), chunk=3)
        stats = server.stats()

    assert sink.scores == []
    assert sink.ids() == Counter({item.response_id: 1 for item in items}), "every id exactly one record"
    assert (totals.items, totals.errors) == (10, 10)
    kinds = {e.kind for e in sink.errors}
    assert kinds <= {ErrorKind.JUDGE_ERROR, ErrorKind.MALFORMED_VERDICT} and len(kinds) == 1
    assert stats["requests_total"] == 5 * 2, "each distinct input tried twice; its copies wait for it"
    assert (totals.usage.input_tokens, totals.usage.output_tokens) == (
        stats["input_tokens_total"],
        stats["output_tokens_total"],
    ), "what the failed asks were billed counts once, not once per copy"


def test_second_run_with_the_embedded_cache_sends_no_request(tmp_path: Path) -> None:
    items = responses(15, tag="cached")
    path = tmp_path / "verdicts.sqlite"
    with emulator() as server:
        first_cache = EmbeddedVerdictCache(path, ttl_seconds=3600)
        first, first_sink = score(server, items, cache=first_cache)
        first_cache.close()
        assert server.stats()["requests_total"] == 15
        server.reset()
        second_cache = EmbeddedVerdictCache(path, ttl_seconds=3600)
        second, second_sink = score(server, items, cache=second_cache)
        second_cache.close()
        assert server.stats()["requests_total"] == 0
    assert first.from_cache == 0 and second.from_cache == second.scored == 15
    assert second.calls.requests == 0 and second.cost_usd == 0.0 and second.usage == Usage()
    assert all(r.cache_hit and r.cost_usd == 0.0 for r in second_sink.scores)
    before = {r.response_id: (r.overall, r.criteria) for r in first_sink.scores}
    after = {r.response_id: (r.overall, r.criteria) for r in second_sink.scores}
    assert after == before


def test_null_and_empty_responses_are_invalid_input_without_a_request() -> None:
    items = [
        ResponseItem(1, "q", None, None),
        ResponseItem(2, "q", None, ""),
        ResponseItem(3, "q", "ctx", "  \n\t "),
        ResponseItem(4, "q", None, "A real answer."),
    ]
    with emulator() as server:
        totals, sink = score(server, items)
        stats = server.stats()
    assert stats["requests_total"] == 1
    assert [r.response_id for r in sink.scores] == [4]
    assert sorted(e.response_id for e in sink.errors) == [1, 2, 3]
    for error in sink.errors:
        assert error.kind is ErrorKind.INVALID_INPUT and not error.retryable
        assert error.attempts == 0
    assert (totals.items, totals.scored, totals.errors) == (4, 1, 3)


def test_only_invalid_input_sends_nothing() -> None:
    with emulator() as server:
        totals, sink = score(server, [ResponseItem(1, None, None, None), ResponseItem(2, None, None, " ")])
        assert server.stats()["requests_total"] == 0
    assert totals.errors == 2 and sink.scores == []


# --- JudgeCaller -------------------------------------------------------------------------------


class SleepLog:
    """Records the engine's back-off waits and returns at once, so retries cost no wall time."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def judge_request(text: str = "Order 7 shipped Monday.") -> JudgeRequest:
    item = ResponseItem(response_id=7, question="Where is order 7?", context=None, response=text)
    return build_request(RUBRIC, item, max_response_chars=10_000, max_output_tokens=512)


async def _judge_all(
    server: EmulatorServer, requests: Sequence[JudgeRequest], config: JudgeConfig, sleep: SleepLog, **kw: Any
) -> tuple[list[Judged | Failed], JudgeCaller]:
    async with client_for(server, **kw) as client:
        caller = JudgeCaller(
            client,
            rubric=RUBRIC,
            config=config,
            concurrency=AdaptiveConcurrency(ceiling=config.concurrency),
            cost_of=lambda usage: cost_usd(usage, PRICE),
            rng=random.Random(0),
            sleep=sleep,
        )
        outcomes = [await caller.judge(request) for request in requests]
    return outcomes, caller


def judge_all(
    server: EmulatorServer, requests: Sequence[JudgeRequest], config: JudgeConfig, **kw: Any
) -> tuple[list[Judged | Failed], JudgeCaller, SleepLog]:
    sleep = SleepLog()
    outcomes, caller = asyncio.run(_judge_all(server, requests, config, sleep, **kw))
    return outcomes, caller, sleep


def test_caller_returns_the_verdict_and_its_usage() -> None:
    with emulator() as server:
        (outcome,), caller, sleep = judge_all(server, [judge_request()], JudgeConfig(**FAST_BACKOFF))
        stats = server.stats()
    assert isinstance(outcome, Judged)
    assert outcome.attempts == 1
    scores = emulated_scores("Order 7 shipped Monday.", NAMES, 1, 5)
    assert {n: c.score for n, c in outcome.verdict.criteria.items()} == scores
    assert outcome.verdict.overall == RUBRIC.overall(scores)
    assert outcome.usage.input_tokens == stats["input_tokens_total"]
    assert outcome.usage.output_tokens == stats["output_tokens_total"]
    assert (caller.stats.requests, caller.stats.retries, sleep.waits) == (1, 0, [])


def test_caller_gives_up_on_persistent_5xx_after_max_attempts_with_capped_backoff() -> None:
    config = JudgeConfig(max_attempts=3, **FAST_BACKOFF)
    with emulator(rate_500=1.0) as server:
        (outcome,), caller, sleep = judge_all(server, [judge_request()], config)
        assert server.stats()["requests_total"] == 3
    assert isinstance(outcome, Failed)
    assert outcome.kind is ErrorKind.JUDGE_ERROR
    assert outcome.attempts == 3
    assert outcome.reason.startswith("gave up after 3 attempts: HTTP 500")
    assert caller.stats.retries == 2 and caller.stats.transient_errors == 3
    assert caller.stop_reason is None
    assert len(sleep.waits) == 2
    assert 0.005 <= sleep.waits[0] <= 0.01  # full jitter in [base/2, base]
    assert 0.01 <= sleep.waits[1] <= 0.02  # doubled, still under backoff_max_s


def test_caller_backoff_is_capped_at_backoff_max() -> None:
    config = JudgeConfig(max_attempts=8, backoff_base_s=0.01, backoff_max_s=0.03)
    with emulator(rate_529=1.0) as server:
        (outcome,), caller, sleep = judge_all(server, [judge_request()], config)
    assert isinstance(outcome, Failed) and outcome.attempts == 8
    assert len(sleep.waits) == 7
    assert max(sleep.waits) <= 0.03
    assert caller.stats.transient_errors == 8


def test_caller_stops_on_a_terminal_error_and_sends_nothing_after() -> None:
    with emulator(api_key="right") as server:
        outcomes, caller, _ = judge_all(
            server, [judge_request("a"), judge_request("b")], JudgeConfig(**FAST_BACKOFF), api_key="wrong"
        )
        assert server.stats()["requests_total"] == 1
    first, second = outcomes
    assert isinstance(first, Failed) and first.kind is ErrorKind.TERMINAL and first.attempts == 1
    assert isinstance(second, Failed) and second.kind is ErrorKind.TERMINAL and second.attempts == 0
    assert second.reason.startswith("run stopped: HTTP 401")
    assert caller.stop_reason is not None


def test_rejected_requests_are_recorded_and_stop_the_run_when_every_one_is_rejected() -> None:
    bad = judge_request()
    bad = JudgeRequest(params={**bad.params, "messages": []}, truncated=False)
    with emulator() as server:
        outcomes, caller, _ = judge_all(server, [bad] * 6, JudgeConfig(**FAST_BACKOFF))
        assert server.stats()["requests_total"] == 5
    assert all(isinstance(o, Failed) for o in outcomes)
    rejected, stopped = outcomes[:5], outcomes[5]
    for outcome in rejected:
        assert isinstance(outcome, Failed)
        assert (outcome.kind, outcome.attempts) == (ErrorKind.JUDGE_ERROR, 1)
        assert "messages: Field required" in outcome.reason
    assert isinstance(stopped, Failed) and stopped.kind is ErrorKind.TERMINAL
    assert caller.stop_reason is not None and "every request rejected" in caller.stop_reason


def test_a_rejected_request_after_a_success_does_not_stop_the_run() -> None:
    bad = JudgeRequest(params={**judge_request().params, "messages": []}, truncated=False)
    with emulator() as server:
        outcomes, caller, _ = judge_all(server, [judge_request(), *[bad] * 6], JudgeConfig(**FAST_BACKOFF))
        assert server.stats()["requests_total"] == 7
    assert isinstance(outcomes[0], Judged)
    assert all(isinstance(o, Failed) and o.kind is ErrorKind.JUDGE_ERROR for o in outcomes[1:])
    assert caller.stop_reason is None


def test_caller_retries_a_timed_out_request() -> None:
    config = JudgeConfig(max_attempts=2, **FAST_BACKOFF)
    with emulator(rate_hang=1.0, hang_seconds=2.0) as server:
        (outcome,), caller, sleep = judge_all(server, [judge_request()], config, timeout=0.3)
        assert server.stats()["faults"]["hang"] == 2
    assert isinstance(outcome, Failed) and outcome.kind is ErrorKind.JUDGE_ERROR
    assert "APITimeoutError" in outcome.reason
    assert caller.stats.by_error == {"TransientJudgeError": 2}
    assert len(sleep.waits) == 1


# --- found by mutation testing (docs/mutation.md) --------------------------------------------------


def budgeted_caller(client: Any, budget: Any, estimator: Any) -> JudgeCaller:
    """A caller that reserves each request's estimate in ``budget`` before sending it."""
    return JudgeCaller(
        client,
        rubric=RUBRIC,
        config=JudgeConfig(**FAST_BACKOFF),
        concurrency=AdaptiveConcurrency(ceiling=4),
        cost_of=lambda usage: cost_usd(usage, PRICE),
        budget=budget,
        estimator=estimator,
    )


def test_a_budget_refusal_ends_the_task_s_calls_without_a_request(caplog: pytest.LogCaptureFixture) -> None:
    """The first refusal logs once and marks the budget spent; every later call returns at once."""
    from judgeflow.config import BudgetConfig
    from judgeflow.judging.budget import Cap, CostEstimator, LocalBudget

    estimator = CostEstimator(PRICE, BudgetConfig())
    cap = Cap("run", "judgeflow:test:budget", limit_usd=estimator.estimate(judge_request().params) / 2, spent_usd=0.0)

    async def judge_two(server: EmulatorServer) -> tuple[list[Judged | Failed], JudgeCaller]:
        async with client_for(server) as client:
            caller = budgeted_caller(client, LocalBudget([cap]), estimator)
            return [await caller.judge(judge_request("a")), await caller.judge(judge_request("b"))], caller

    with emulator() as server, caplog.at_level("WARNING", logger="judgeflow.judging.judge_call"):
        (first, second), caller = asyncio.run(judge_two(server))
        assert server.stats()["requests_total"] == 0
    reason = "budget cap reached; left for the next run"
    assert first == Failed(ErrorKind.BUDGET_EXHAUSTED, reason, 1, Usage())
    assert second == Failed(ErrorKind.BUDGET_EXHAUSTED, reason, 0, Usage())
    assert caller.budget_exhausted is True
    assert caller.stats.budget_refused == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.judge_call"]
    assert warnings == ["budget cap reached: no more requests this task; the rest waits for the next run"]
    assert cap.reserved_usd == 0.0 and cap.spent_usd == 0.0


def test_batch_totals_summarise_every_counter_for_the_run_summary() -> None:
    from judgeflow.judging.judge_call import CallStats

    totals = BatchTotals(
        items=10,
        scored=7,
        from_cache=2,
        errors=3,
        usage=Usage(input_tokens=11, output_tokens=12, cache_write_tokens=13, cache_read_tokens=14),
        cost_usd=0.12345678,
        calls=CallStats(requests=5, retries=4, rate_limited=3, budget_refused=2, transient_errors=1),
        max_in_flight=6,
        stopped="HTTP 401",
        noise_asks=2,
        noise_cost_usd=0.0123456789,
    )
    assert totals.to_json() == {
        "items": 10,
        "scored": 7,
        "from_cache": 2,
        "errors": 3,
        "input_tokens": 11,
        "output_tokens": 12,
        "cache_write_tokens": 13,
        "cache_read_tokens": 14,
        "cost_usd": 0.123457,
        "requests": 5,
        "retries": 4,
        "rate_limited": 3,
        "budget_refused": 2,
        "max_in_flight": 6,
        "stopped": "HTTP 401",
        "noise_asks": 2,
        "noise_cost_usd": 0.012346,
    }


def test_concurrent_refusals_are_each_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """With the ledger in Redis, calls in flight together are refused together: each refusal counts."""
    import uuid

    import redis.asyncio

    from judgeflow.config import BudgetConfig
    from judgeflow.judging.budget import Cap, CostEstimator, RedisBudget
    from tests.conftest import REDIS_ADDRESS, require_tcp

    require_tcp("Redis", REDIS_ADDRESS)
    estimator = CostEstimator(PRICE, BudgetConfig())
    cap = Cap("run", f"judgeflow:test:refusals:{uuid.uuid4().hex}", limit_usd=1e-9, spent_usd=0.0)

    async def judge_three(server: EmulatorServer) -> tuple[list[Judged | Failed], JudgeCaller]:
        ledger = RedisBudget(redis.asyncio.Redis(host=REDIS_ADDRESS[0], port=REDIS_ADDRESS[1]), [cap])
        try:
            async with client_for(server) as client:
                caller = budgeted_caller(client, ledger, estimator)
                outcomes = await asyncio.gather(*(caller.judge(judge_request(t)) for t in "abc"))
                return list(outcomes), caller
        finally:
            await ledger._client.delete(cap.key)
            await ledger.aclose()

    with emulator() as server, caplog.at_level("WARNING", logger="judgeflow.judging.judge_call"):
        outcomes, caller = asyncio.run(judge_three(server))
        assert server.stats()["requests_total"] == 0
    assert all(isinstance(o, Failed) and o.kind is ErrorKind.BUDGET_EXHAUSTED for o in outcomes)
    assert caller.stats.budget_refused == 3
    assert len([r for r in caplog.records if r.name == "judgeflow.judging.judge_call"]) == 1


def test_a_stop_is_logged_once_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    with emulator(api_key="right") as server, caplog.at_level("ERROR", logger="judgeflow.judging.judge_call"):
        (first,), caller, _ = judge_all(server, [judge_request("a")], JudgeConfig(**FAST_BACKOFF), api_key="wrong")
    assert isinstance(first, Failed) and first.kind is ErrorKind.TERMINAL and first.reason == caller.stop_reason
    caller.stop("a second reason is not logged")
    messages = [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.judge_call"]
    assert caller.stop_reason is not None and caller.stop_reason.startswith("HTTP 401")
    assert messages == [f"stopping the run: {caller.stop_reason}"]


def test_a_malformed_verdict_s_reason_is_logged_at_most_200_characters() -> None:
    from judgeflow.judging.judge_call import _short
    from judgeflow.judging.verdict import Unscored

    assert _short(Unscored("x" * 300, "raw")) == "x" * 200
    assert _short(Unscored("short", "raw")) == "short"


@pytest.mark.parametrize(
    ("remaining", "reset_in_s", "paused_s"),
    [
        pytest.param("0", 5.0, 5.0, id="none-left-pauses-until-the-reset"),
        pytest.param("0", 0.8, 0.8, id="under-a-second-too"),
        pytest.param("0", 60.0, 30.0, id="capped-at-backoff-max"),
        pytest.param("1", 5.0, 0.0, id="some-left"),
        pytest.param("0", -5.0, 0.0, id="reset-already-past"),
        pytest.param(None, 5.0, 0.0, id="no-remaining-header"),
        pytest.param("0", None, 0.0, id="no-reset-header"),
        pytest.param("0", "not a time", 0.0, id="unreadable-reset"),
    ],
)
def test_an_exhausted_request_quota_pauses_every_call_until_its_reset(
    remaining: str | None, reset_in_s: float | str | None, paused_s: float
) -> None:
    import datetime as dt

    now = 1000.0
    concurrency = AdaptiveConcurrency(ceiling=4, clock=lambda: now)
    config = JudgeConfig(backoff_max_s=30.0)
    caller = JudgeCaller(None, rubric=RUBRIC, config=config, concurrency=concurrency, cost_of=lambda usage: 0.0)
    headers: dict[str, str] = {}
    if remaining is not None:
        headers["anthropic-ratelimit-requests-remaining"] = remaining
    if isinstance(reset_in_s, float):
        reset = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=reset_in_s)
        headers["anthropic-ratelimit-requests-reset"] = reset.isoformat().replace("+00:00", "Z")
    elif reset_in_s is not None:
        headers["anthropic-ratelimit-requests-reset"] = reset_in_s
    caller._follow_headers(headers)
    assert max(0.0, concurrency._pause_until - now) == pytest.approx(paused_s, abs=0.3)


def test_usage_without_counts_is_zero_tokens() -> None:
    """A reply whose usage leaves counts out (None or absent, as batch results may) costs nothing extra."""
    from types import SimpleNamespace

    from judgeflow.judging.judge_call import usage_of

    assert usage_of(SimpleNamespace(usage=SimpleNamespace(input_tokens=None, output_tokens=None))) == Usage()
    full = SimpleNamespace(input_tokens=1, output_tokens=2, cache_creation_input_tokens=3, cache_read_input_tokens=4)
    assert usage_of(SimpleNamespace(usage=full)) == Usage(1, 2, 3, 4)


class DictCache:
    """The test's VerdictCache: a dict, so a second run of the same scorer finds the first's verdicts."""

    def __init__(self) -> None:
        self.verdicts: dict[str, Any] = {}

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return {key: self.verdicts[key] for key in keys if key in self.verdicts}

    def put_many(self, items: Any) -> None:
        self.verdicts.update(items)

    def describe(self) -> str:
        return "dict"

    def close(self) -> None:
        pass


class NoiseCollectingSink(CollectingSink):
    """A CollectingSink that also takes the noise sample's rows, and remembers the order of the writes."""

    def __init__(self) -> None:
        super().__init__()
        self.noise: list[Any] = []
        self.order: list[str] = []
        self.sizes: list[int] = []

    def write(self, scores: Sequence[ScoreRecord], errors: Sequence[ErrorRecord]) -> None:
        self.order.append("scores")
        self.sizes.append(len(scores) + len(errors))
        super().write(scores, errors)

    def write_noise(self, records: Sequence[Any]) -> None:
        self.order.append("noise")
        self.noise.extend(records)


def test_the_noise_sample_is_judged_again_past_the_cache_and_its_cost_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each response whose id falls in the noise sample (cache hits too) is asked a second time; its
    row pairs both verdicts, costs what the second ask used, and is written after the scores; the
    second asks' usage and cost are in the run's totals. Without a noise sink nothing is asked twice."""
    import datetime as dt

    from judgeflow.config import NoiseConfig
    from judgeflow.judging.noise import in_noise_sample

    now = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    config = Settings(judge=JudgeConfig(concurrency=4, **FAST_BACKOFF), noise=NoiseConfig(rate=0.5))
    cached, fresh = (
        responses(12, tag="noise"),
        [
            ResponseItem(100 + item.response_id, item.question, item.context, item.response + " Fresh.")
            for item in responses(12, tag="noise")
        ],
    )
    cache = DictCache()

    async def run(items: Sequence[ResponseItem], noise_sink: NoiseCollectingSink | None) -> BatchTotals:
        async with client_for(server) as client:
            scorer = BatchScorer(
                client=client,
                rubric=RUBRIC,
                settings=config,
                cache=cache,
                sink=noise_sink or CollectingSink(),
                dag_run_id=RUN_ID,
                noise_sink=noise_sink,
                now=lambda: now,
            )
            return await scorer.run(chunked(items, 5))

    sink = NoiseCollectingSink()
    with emulator() as server, caplog.at_level("ERROR", logger="asyncio"):
        without = asyncio.run(run(cached, None))
        assert server.stats()["requests_total"] == 12, "no noise sink: nothing asked twice"
        assert (without.noise_asks, without.noise_cost_usd) == (0, 0.0)
        server.reset()
        totals = asyncio.run(run(cached + fresh, sink))
        stats = server.stats()

    items = {item.response_id: item for item in cached + fresh}
    sampled = sorted(i for i in items if in_noise_sample("helpfulness", i, 0.5))
    assert 0 < len([i for i in sampled if i < 100]) < 12 and 0 < len([i for i in sampled if i >= 100]) < 12
    assert sorted(r.response_id for r in sink.noise) == sampled
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    for record in sink.noise:
        scores = expected_scores(items[record.response_id])
        assert (record.first, record.second, record.error) == (scores, scores, None)
        assert (record.rubric_name, record.rubric_version) == ("helpfulness", RUBRIC.version_key)
        assert (record.dag_run_id, record.recorded_at) == (RUN_ID, now)
        assert record.cost_usd > 0
    assert sink.order == ["scores", "noise"]
    assert len(sink.scores) == 24 and sink.errors == []
    assert stats["requests_total"] == 12 + len(sampled), "the fresh ones once, the sample once more"
    assert totals.noise_asks == len(sampled)
    noise_cost = sum(r.cost_usd for r in sink.noise)
    assert totals.noise_cost_usd == pytest.approx(noise_cost, abs=1e-12)
    assert totals.cost_usd == pytest.approx(sum(r.cost_usd for r in sink.scores) + noise_cost, abs=1e-12)
    assert totals.usage.input_tokens == stats["input_tokens_total"]
    assert totals.usage.output_tokens == stats["output_tokens_total"]
    assert totals.calls.requests == stats["requests_total"]
    assert len(cache.verdicts) == 24, "the fresh verdicts were put in the cache"


def _backoff(attempts: int) -> float:
    """The wait the caller's ``random.Random(0)`` draws for its first back-off after ``attempts``."""
    from judgeflow.judging.retry import backoff

    return backoff(attempts, JudgeConfig(max_attempts=3, **FAST_BACKOFF), random.Random(0))


@pytest.mark.parametrize(
    ("error", "attempts", "outcome", "counted", "throttled_s", "waits"),
    [
        pytest.param(
            "RateLimited", 1, None, {"rate_limited": 1, "retries": 1}, 7.0, [], id="429-pauses-everyone-for-retry-after"
        ),
        pytest.param(
            "RateLimited-no-header", 1, None, {"rate_limited": 1, "retries": 1}, _backoff(1), [], id="429-backoff"
        ),
        pytest.param(
            "RateLimited",
            12,
            (ErrorKind.JUDGE_ERROR, "gave up after 12 attempts: HTTP 429"),
            {"rate_limited": 1},
            7.0,
            [],
            id="429-gives-up-after-4x-attempts",
        ),
        pytest.param(
            "Overloaded", 1, None, {"transient_errors": 1, "retries": 1}, 2.0, [2.0], id="529-throttles-and-waits"
        ),
        pytest.param(
            "TransientJudgeError",
            1,
            None,
            {"transient_errors": 1, "retries": 1},
            None,
            [_backoff(1)],
            id="500-backs-off",
        ),
        pytest.param(
            "TransientJudgeError",
            3,
            (ErrorKind.JUDGE_ERROR, "gave up after 3 attempts: HTTP 500"),
            {"transient_errors": 1},
            None,
            [],
            id="500-gives-up",
        ),
        pytest.param("RejectedRequest", 1, (ErrorKind.JUDGE_ERROR, "HTTP 400"), {}, None, [], id="400-recorded"),
        pytest.param("TerminalJudgeError", 1, (ErrorKind.TERMINAL, "HTTP 401"), {}, None, [], id="401-stops"),
    ],
)
def test_each_kind_of_failure_is_counted_throttled_and_retried_as_the_policy_says(
    error: str,
    attempts: int,
    outcome: tuple[ErrorKind, str] | None,
    counted: dict[str, int],
    throttled_s: float | None,
    waits: list[float],
) -> None:
    """The caller's side of :data:`judgeflow.judging.retry.POLICY`, one failure at a time: what it
    returns, which counters move, whether the task's concurrency halves and every call pauses (a 429's
    ``retry-after`` is the pause), and how long this call waits before its next attempt."""
    from judgeflow import errors
    from judgeflow.judging.judge_call import CallStats

    exc = {
        "RateLimited": errors.RateLimited("HTTP 429", retry_after=7.0),
        "RateLimited-no-header": errors.RateLimited("HTTP 429"),
        "Overloaded": errors.Overloaded("HTTP 529", retry_after=2.0),
        "TransientJudgeError": errors.TransientJudgeError("HTTP 500"),
        "RejectedRequest": errors.RejectedRequest("HTTP 400"),
        "TerminalJudgeError": errors.TerminalJudgeError("HTTP 401"),
    }[error]
    now = 1000.0
    concurrency = AdaptiveConcurrency(ceiling=8, clock=lambda: now)
    sleep = SleepLog()
    caller = JudgeCaller(
        None,
        rubric=RUBRIC,
        config=JudgeConfig(max_attempts=3, **FAST_BACKOFF),
        concurrency=concurrency,
        cost_of=lambda usage: 0.0,
        rng=random.Random(0),
        sleep=sleep,
    )
    assert asyncio.run(caller._after_failure(exc, attempts)) == outcome
    assert caller.stats == CallStats(**counted, by_error={type(exc).__name__: 1})
    assert concurrency.limit == (2.0 if error.startswith(("RateLimited", "Overloaded")) else 4.0)
    assert concurrency._pause_until == (0.0 if throttled_s is None else pytest.approx(now + throttled_s))
    assert sleep.waits == waits
    assert caller.stop_reason == ("HTTP 401" if error == "TerminalJudgeError" else None)


def test_results_are_written_every_200_and_progress_is_logged_every_500(caplog: pytest.LogCaptureFixture) -> None:
    """A task hands its records to the sink in chunks of :data:`FLUSH_EVERY` (a killed task loses at
    most one chunk) and logs its progress each time it passes a multiple of :data:`PROGRESS_EVERY`,
    and at the end. Served from the cache (and NULL responses: one in a hundred, and 500 to 559, so
    the chunk that passes 500 is mostly errors), so no request is sent: the scorer has no client."""
    from judgeflow.judging.outcomes import response_key
    from judgeflow.records import CriterionScore, Verdict

    null = set(range(99, 1250, 100)) | set(range(500, 560))
    items = [ResponseItem(i, "q", None, None if i in null else f"answer {i}") for i in range(1250)]
    verdict = Verdict({name: CriterionScore(3, "fine") for name in NAMES}, 3.0)
    cache = DictCache()
    cache.verdicts = {response_key(RUBRIC, item): verdict for item in items if item.response}
    sink = NoiseCollectingSink()
    scorer = BatchScorer(
        client=None, rubric=RUBRIC, settings=settings(), cache=cache, sink=sink, dag_run_id=RUN_ID, noise_sink=sink
    )
    with caplog.at_level("INFO", logger="judgeflow.judging.runner"):
        totals = asyncio.run(scorer.run(chunked(items, 100)))
    assert sink.sizes == [200, 200, 200, 200, 200, 200, 50]
    assert sink.order == ["scores"] * 7, "no noise sample: no noise writes"
    assert [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.runner"] == [
        "progress: 600 responses done of 600 read so far (534 scored, 534 from cache, 66 errors), $0.0000",
        "progress: 1000 responses done of 1000 read so far (930 scored, 930 from cache, 70 errors), $0.0000",
        "progress: 1250 responses done of 1250 read so far (1178 scored, 1178 from cache, 72 errors), $0.0000",
    ]
    assert (totals.items, totals.scored, totals.from_cache, totals.errors) == (1250, 1178, 1178, 72)
    assert sink.ids() == Counter(range(1250))
    assert {(r.cache_hit, r.usage, r.cost_usd, r.latency_ms, r.overall) for r in sink.scores} == {
        (True, Usage(), 0.0, 0, 3.0)
    }
    assert sorted(e.response_id for e in sink.errors) == sorted(null)
    assert {(e.kind, e.reason, e.attempts) for e in sink.errors} == {
        (ErrorKind.INVALID_INPUT, "response is NULL or empty", 0)
    }
    assert (totals.calls.requests, totals.cost_usd, totals.stopped) == (0, 0.0, None)


def test_the_in_run_dedupe_forgets_the_oldest_finished_inputs_past_its_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dedupe keeps the newest :data:`DEDUPE_WINDOW` inputs; past it the oldest is forgotten once
    its judging has finished (one still in flight is kept: its copies are waiting on it)."""
    from judgeflow.judging import runner

    monkeypatch.setattr(runner, "DEDUPE_WINDOW", 3)
    scorer = BatchScorer(
        client=None,
        rubric=RUBRIC,
        settings=settings(),
        cache=NullVerdictCache(),
        sink=CollectingSink(),
        dag_run_id=RUN_ID,
    )
    loop = asyncio.new_event_loop()
    try:
        pending: asyncio.Future[Any] = loop.create_future()
        done: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(5)]
        for future in done:
            future.set_result(None)
        scorer._remember("a", done[0])
        scorer._remember("b", done[1])
        scorer._remember("c", done[2])
        assert list(scorer._in_flight) == ["a", "b", "c"]
        scorer._remember("d", done[3])
        assert list(scorer._in_flight) == ["b", "c", "d"]
        assert scorer._in_flight["d"] is done[3]
        scorer._in_flight.clear()
        scorer._remember("p", pending)
        for key, future in zip("efg", done, strict=False):
            scorer._remember(key, future)
        assert list(scorer._in_flight) == ["p", "e", "f", "g"], "the oldest is still being judged"
    finally:
        loop.close()


def test_usage_splits_the_cache_writes_that_live_an_hour() -> None:
    """``usage.cache_creation.ephemeral_1h_input_tokens`` (when the API gives it) is carried as
    ``cache_write_1h_tokens``: a 1-hour cache write is priced higher than a 5-minute one."""
    from types import SimpleNamespace

    from judgeflow.judging.judge_call import usage_of

    def reply(split: Any) -> Any:
        usage = SimpleNamespace(
            input_tokens=1, output_tokens=2, cache_creation_input_tokens=30, cache_read_input_tokens=4
        )
        if split is not None:
            usage.cache_creation = split
        return SimpleNamespace(usage=usage)

    one_hour = SimpleNamespace(ephemeral_1h_input_tokens=20, ephemeral_5m_input_tokens=10)
    assert usage_of(reply(one_hour)) == Usage(1, 2, 30, 4, cache_write_1h_tokens=20)
    assert usage_of(reply(None)) == Usage(1, 2, 30, 4, cache_write_1h_tokens=0)
    assert usage_of(reply(SimpleNamespace(ephemeral_1h_input_tokens=None))) == Usage(1, 2, 30, 4)
    assert usage_of(reply(SimpleNamespace(ephemeral_5m_input_tokens=30))) == Usage(1, 2, 30, 4)


class ScriptedLedger:
    """A BudgetLedger that records each reservation and settlement and answers reservations from a
    script; ``then`` runs at a reservation, as another call of the task may while this one awaits it."""

    def __init__(self, answers: Sequence[bool], then: Any = None) -> None:
        self.answers = list(answers)
        self.then = then
        self.calls: list[tuple[Any, ...]] = []

    async def reserve(self, amount: float) -> bool:
        self.calls.append(("reserve", amount))
        answer = self.answers.pop(0)
        if self.then is not None and not self.answers:
            self.then()
        return answer

    async def settle(self, reserved: float, actual: float) -> None:
        self.calls.append(("settle", reserved, actual))

    def describe(self) -> str:
        return "scripted"

    async def aclose(self) -> None:
        pass


class RecordingLimiter:
    """A RateLimiter that lets everything through and records the input tokens each request took."""

    def __init__(self) -> None:
        self.tokens: list[int] = []

    async def acquire(self, *, tokens: int) -> None:
        self.tokens.append(tokens)

    def describe(self) -> str:
        return "recording"

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("end", ["budget-refused", "stopped-meanwhile"])
def test_a_paid_malformed_reply_is_carried_into_the_failure_that_ends_the_call(end: str) -> None:
    """A malformed verdict is billed; when the second ask is then refused by the budget, or the run is
    stopped by another call while this one reserves, the failure carries what was already paid.
    Each attempt reserves the request's estimate and gives it back, and the bill is settled; the rate
    limiter is charged the request's input tokens as the model's tokenizer counts them."""
    from judgeflow.config import BudgetConfig
    from judgeflow.judging.budget import CostEstimator

    price = Settings().price_for("claude-haiku-5-5")  # a tokenizer_factor of 1.3
    estimator = CostEstimator(price, BudgetConfig())
    request = judge_request()
    estimate = estimator.estimate(request.params)
    limiter = RecordingLimiter()
    holder: list[JudgeCaller] = []
    if end == "budget-refused":
        ledger = ScriptedLedger([True, False])
    else:
        ledger = ScriptedLedger([True, True], then=lambda: holder[0].stop("HTTP 401 (another call)"))

    async def judge_once(server: EmulatorServer) -> Judged | Failed:
        async with client_for(server) as client:
            caller = JudgeCaller(
                client,
                rubric=RUBRIC,
                config=JudgeConfig(verdict_attempts=2, **FAST_BACKOFF),
                concurrency=AdaptiveConcurrency(ceiling=4),
                cost_of=lambda usage: cost_usd(usage, price),
                limiter=limiter,
                budget=ledger,
                estimator=estimator,
            )
            holder.append(caller)
            return await caller.judge(request)

    with emulator(rate_malformed=1.0) as server:
        outcome = asyncio.run(judge_once(server))
        stats = server.stats()
    assert stats["requests_total"] == 1
    paid = billed(stats)
    assert paid.output_tokens > 0
    if end == "budget-refused":
        assert outcome == Failed(ErrorKind.BUDGET_EXHAUSTED, "budget cap reached; left for the next run", 2, paid)
    else:
        assert outcome == Failed(ErrorKind.TERMINAL, "run stopped: HTTP 401 (another call)", 2, paid)
    second_estimate = estimator.estimate(request.params)  # the estimator has seen one reply
    # the reservation turns into the bill in one settle (two would leave the ledger showing neither for a moment)
    calls = [("reserve", estimate), ("settle", estimate, cost_usd(paid, price))]
    calls.append(("reserve", second_estimate))
    if end == "stopped-meanwhile":
        calls.append(("settle", second_estimate, 0.0))
    assert ledger.calls == calls
    assert limiter.tokens == [CostEstimator.input_tokens(request.params, tokenizer_factor=1.3)]
    assert limiter.tokens[0] > CostEstimator.input_tokens(request.params)


def test_without_an_estimator_a_call_reserves_nothing_and_counts_tokens_as_haiku_4_5() -> None:
    ledger = ScriptedLedger([True])
    limiter = RecordingLimiter()

    async def judge_once(server: EmulatorServer) -> Judged | Failed:
        async with client_for(server) as client:
            caller = JudgeCaller(
                client,
                rubric=RUBRIC,
                config=JudgeConfig(**FAST_BACKOFF),
                concurrency=AdaptiveConcurrency(ceiling=4),
                cost_of=lambda usage: cost_usd(usage, PRICE),
                limiter=limiter,
                budget=ledger,
            )
            return await caller.judge(judge_request())

    with emulator() as server:
        outcome = asyncio.run(judge_once(server))
    assert isinstance(outcome, Judged)
    assert ledger.calls == [("reserve", 0.0), ("settle", 0.0, cost_usd(outcome.usage, PRICE))]
    assert limiter.tokens == [CostEstimator.input_tokens(judge_request().params)]


def test_a_task_holds_at_most_four_times_its_concurrency_and_uses_the_run_s_limiter_and_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At most ``4 x concurrency`` responses are admitted and unfinished at a time (the task's memory
    does not grow with the batch: a finished one is let go, with no error from the event loop); the
    requests are sent through the run's rate limiter and each reserves its estimate in the run's
    budget, whose settled bills add up to the task's cost."""
    config = settings(concurrency=2)
    limiter = RecordingLimiter()
    ledger = ScriptedLedger([True] * 16)
    items = responses(16, tag="admission")
    waiting: list[int] = []

    async def run(server: EmulatorServer) -> BatchTotals:
        async with client_for(server) as client:
            scorer = BatchScorer(
                client=client,
                rubric=RUBRIC,
                settings=config,
                cache=NullVerdictCache(),
                sink=CollectingSink(),
                dag_run_id=RUN_ID,
                limiter=limiter,
                budget=ledger,
            )

            def one_at_a_time() -> Iterator[Sequence[ResponseItem]]:
                for item in items:
                    waiting.append(scorer.totals.items - scorer.totals.scored - scorer.totals.errors)
                    yield [item]

            return await scorer.run(one_at_a_time())

    with emulator(latency_median_s=0.05) as server, caplog.at_level("ERROR", logger="asyncio"):
        totals = asyncio.run(run(server))
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    assert max(waiting) == 8
    assert totals.max_in_flight == 2
    assert totals.scored == 16
    assert len(limiter.tokens) == 16 and all(tokens > 0 for tokens in limiter.tokens)
    reservations = [call[1] for call in ledger.calls if call[0] == "reserve"]
    assert len(reservations) == 16 and all(amount > 0 for amount in reservations)
    assert sum(call[2] for call in ledger.calls if call[0] == "settle") == pytest.approx(totals.cost_usd, abs=1e-12)


def test_the_judge_cache_ttl_setting_reaches_every_request() -> None:
    """``judge.cache_ttl: 1h`` marks the cached prefix for an hour: the API bills those writes as
    1-hour writes (priced higher), which the task's usage carries."""
    items = responses(3, tag="ttl")
    with emulator(min_cacheable_tokens={"claude-haiku-4-5": 100}) as server:
        one_hour, _ = score(server, items, config=settings(concurrency=1, cache_ttl="1h"))
        server.reset()
        five_minutes, _ = score(server, items, config=settings(concurrency=1))
    assert one_hour.usage.cache_write_1h_tokens == one_hour.usage.cache_write_tokens > 0
    assert five_minutes.usage.cache_write_1h_tokens == 0 < five_minutes.usage.cache_write_tokens


def test_noise_rows_that_finish_after_the_last_scores_are_written_at_the_end() -> None:
    """The second asks of cache hits run in the background: the chunk's scores are written first,
    and the noise rows that finish afterwards are written by the last flush, with no score left."""
    from judgeflow.config import NoiseConfig
    from judgeflow.judging.noise import in_noise_sample
    from judgeflow.judging.outcomes import response_key
    from judgeflow.records import CriterionScore, Verdict

    items = responses(200, tag="late-noise")
    cache = DictCache()
    verdict = Verdict({name: CriterionScore(3, "fine") for name in NAMES}, 3.0)
    cache.verdicts = {response_key(RUBRIC, item): verdict for item in items}
    config = Settings(judge=JudgeConfig(concurrency=4, **FAST_BACKOFF), noise=NoiseConfig(rate=0.05))
    sink = NoiseCollectingSink()

    async def run(server: EmulatorServer) -> BatchTotals:
        async with client_for(server) as client:
            scorer = BatchScorer(
                client=client,
                rubric=RUBRIC,
                settings=config,
                cache=cache,
                sink=sink,
                dag_run_id=RUN_ID,
                noise_sink=sink,
            )
            return await scorer.run(chunked(items, 200))

    with emulator() as server:
        totals = asyncio.run(run(server))
    sampled = [i for i in range(200) if in_noise_sample("helpfulness", i, 0.05)]
    assert len(sampled) > 0
    assert (sink.order[0], sink.sizes[0], sink.order[-1]) == ("scores", 200, "noise")
    assert sorted(r.response_id for r in sink.noise) == sampled
    assert totals.noise_asks == len(sampled)


def test_latency_is_the_request_s_wall_time_in_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """From just before the request is sent to just after its reply is read (the caller's clock,
    scripted here: one second apart)."""
    from types import SimpleNamespace

    from judgeflow.judging import judge_call

    readings = iter([100.0, 101.0])
    monkeypatch.setattr(judge_call, "time", SimpleNamespace(monotonic=lambda: next(readings)))
    with emulator() as server:
        (outcome,), _, _ = judge_all(server, [judge_request()], JudgeConfig(**FAST_BACKOFF))
    assert isinstance(outcome, Judged) and outcome.latency_ms == 1000


def test_the_cache_watch_sees_every_reply_of_a_prefix_marked_cacheable(caplog: pytest.LogCaptureFixture) -> None:
    """A prefix below the model's cache minimum is never cached: after three such replies the task
    log says so. Replies to requests that mark nothing cacheable say nothing about the minimum."""
    from judgeflow.judging.prompt_cache import UNCACHED_REPLIES_BEFORE_WARNING

    marked = [judge_request(f"answer {n}") for n in range(UNCACHED_REPLIES_BEFORE_WARNING)]
    unmarked = [
        JudgeRequest(
            params={
                **request.params,
                "system": [{k: v for k, v in b.items() if k != "cache_control"} for b in request.params["system"]],
                "tools": [{k: v for k, v in b.items() if k != "cache_control"} for b in request.params["tools"]],
            },
            truncated=False,
        )
        for request in marked
    ]
    below_minimum = {"claude-haiku-4-5": 100_000}
    with (
        emulator(min_cacheable_tokens=below_minimum) as server,
        caplog.at_level("WARNING", logger="judgeflow.judging.prompt_cache"),
    ):
        _, marked_caller, _ = judge_all(server, marked, JudgeConfig(**FAST_BACKOFF))
        _, unmarked_caller, _ = judge_all(server, unmarked, JudgeConfig(**FAST_BACKOFF))
    assert (marked_caller.cache_watch.uncached_in_a_row, marked_caller.cache_watch.warned) == (3, True)
    assert (unmarked_caller.cache_watch.uncached_in_a_row, unmarked_caller.cache_watch.warned) == (0, False)
    assert len([r for r in caplog.records if r.name == "judgeflow.judging.prompt_cache"]) == 1


def test_a_malformed_verdict_is_logged_and_counted_as_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    config = JudgeConfig(verdict_attempts=3, **FAST_BACKOFF)
    with emulator(rate_malformed=1.0) as server, caplog.at_level("DEBUG", logger="judgeflow.judging.judge_call"):
        (outcome,), caller, sleep = judge_all(server, [judge_request()], config)
    assert isinstance(outcome, Failed) and outcome.kind is ErrorKind.MALFORMED_VERDICT and outcome.attempts == 3
    assert (caller.stats.requests, caller.stats.malformed_verdicts, caller.stats.retries) == (3, 3, 2)
    assert sleep.waits == [], "a malformed verdict is asked again at once"
    messages = [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.judge_call"]
    assert len(messages) == 2
    for message in messages:
        assert message.startswith("malformed verdict (") and message.endswith("); asking again")
        assert "completeness" in message


def test_a_paid_malformed_reply_is_carried_into_a_failure_after_it() -> None:
    """The first reply is malformed (billed), the second ask fails with a 500 and the call gives up:
    the failure carries what the malformed reply cost. (Seed 10 draws a malformed verdict, then a 500.)"""
    config = JudgeConfig(max_attempts=1, verdict_attempts=2, **FAST_BACKOFF)
    with emulator(rate_500=0.5, rate_malformed=0.5, seed=10) as server:
        (outcome,), _, _ = judge_all(server, [judge_request()], config)
        stats = server.stats()
    assert (stats["requests_total"], stats["faults"]["malformed"], stats["faults"]["500"]) == (2, 1, 1)
    paid = billed(stats)
    assert paid.output_tokens > 0
    assert isinstance(outcome, Failed)
    assert (outcome.kind, outcome.attempts, outcome.usage) == (ErrorKind.JUDGE_ERROR, 2, paid)
    assert outcome.reason.startswith("gave up after 2 attempts: HTTP 500")


def billed(stats: dict[str, Any]) -> Usage:
    """What the emulator billed, as the usage a failure carries."""
    return Usage(
        stats["input_tokens_total"],
        stats["output_tokens_total"],
        stats["cache_creation_tokens_total"],
        stats["cache_read_tokens_total"],
    )
