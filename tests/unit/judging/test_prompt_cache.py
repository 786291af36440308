"""The judge's static prefix is big enough to be prompt-cached, by estimate and by the emulator's bill."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from judgeflow.judging.prompt import build_request
from judgeflow.judging.prompt_cache import (
    FALLBACK_MIN_CACHEABLE_TOKENS,
    PrefixReport,
    estimate_tokens,
    min_cacheable_tokens,
    prefix_report,
)
from judgeflow.records import ResponseItem
from judgeflow.rubric import Rubric, load_rubric, parse_rubric
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.emulator.request import parse_request
from tests.support import ROOT

TINY = """\
name: tiny
version: 1
instructions: Judge it.
criteria:
  - name: accuracy
    description: Is it right?
"""


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(ROOT / "include" / "rubrics", "helpfulness")


def params_for(rubric: Rubric, response: str) -> dict[str, Any]:
    item = ResponseItem(response_id=response, question="Where is my parcel?", context="", response=response)
    return build_request(rubric, item, max_response_chars=60_000, max_output_tokens=1024).params


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("claude-haiku-4-5", 4096, id="haiku-4-5-alias"),
        pytest.param("claude-haiku-4-5-20251001", 4096, id="haiku-4-5-dated"),
        pytest.param("claude-sonnet-4-5-20250929", 1024, id="sonnet-4-5-dated"),
        pytest.param("claude-opus-4-6", 4096, id="opus-4-6"),
        pytest.param("claude-opus-4-5-20251101", 4096, id="opus-4-5-dated"),
        pytest.param("claude-opus-4-1-20250805", 1024, id="opus-4-1-dated"),
        pytest.param("claude-opus-4-20250514", 1024, id="opus-4-0-dated"),
        pytest.param("claude-3-5-haiku-20241022", 2048, id="haiku-3-5-legacy-id"),
        pytest.param("my-finetune-v2", FALLBACK_MIN_CACHEABLE_TOKENS, id="unknown"),
    ],
)
def test_min_cacheable_tokens_by_longest_prefix(model: str, expected: int) -> None:
    assert min_cacheable_tokens(model) == expected


def test_unknown_models_fall_back_to_1024() -> None:
    assert FALLBACK_MIN_CACHEABLE_TOKENS == 1024


@pytest.mark.parametrize(
    ("chars", "tokens"),
    [pytest.param(0, 0, id="empty"), pytest.param(1, 1, id="one"), pytest.param(7, 2, id="exact"), (8, 3)],
)
def test_estimate_is_ceil_chars_over_three_and_a_half(chars: int, tokens: int) -> None:
    assert estimate_tokens("x" * chars) == tokens


def test_default_rubric_prefix_qualifies_on_haiku_4_5(rubric: Rubric) -> None:
    report = prefix_report(rubric)
    assert report.model == "claude-haiku-4-5"
    assert report.minimum == 4096
    assert report.qualifies
    assert report.describe().endswith(": cached")
    assert f"~{report.prefix_tokens:,} tokens" in report.describe()


def test_default_rubric_prefix_qualifies_by_the_emulators_count(rubric: Rubric) -> None:
    breakpoints = parse_request(params_for(rubric, "It ships tomorrow.")).breakpoints
    assert breakpoints, "the system prompt should carry cache_control"
    assert breakpoints[-1].tokens >= EmulatorConfig().min_cacheable_for(rubric.model)


def test_estimate_is_more_conservative_than_the_emulator(rubric: Rubric) -> None:
    emulator_tokens = parse_request(params_for(rubric, "x")).breakpoints[-1].tokens
    assert prefix_report(rubric).prefix_tokens > emulator_tokens


def test_a_tiny_rubric_does_not_qualify_and_says_so() -> None:
    report = prefix_report(parse_rubric(TINY))
    assert report == PrefixReport(
        model="claude-haiku-4-5", prefix_tokens=report.prefix_tokens, minimum=4096, qualifies=False
    )
    assert 0 < report.prefix_tokens < 4096
    assert "below the minimum" in report.describe()
    assert "every request pays full price" in report.describe()


def test_prompt_cache_is_written_then_read_by_the_emulator(rubric: Rubric, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0), port=0) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0)
        first = client.messages.create(**params_for(rubric, "Your parcel arrives on Tuesday.")).usage
        second = client.messages.create(**params_for(rubric, "I don't know, check the website.")).usage

    assert first.cache_creation_input_tokens is not None and first.cache_creation_input_tokens > 4096
    assert not first.cache_read_input_tokens
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert not second.cache_creation_input_tokens
    assert second.input_tokens * 20 < second.cache_read_input_tokens


def test_default_rubric_has_examples_for_every_level(rubric: Rubric) -> None:
    levels = set(range(rubric.scale.min, rubric.scale.max + 1))
    for criterion in rubric.criteria:
        scores = [example["score"] for example in criterion.examples]
        assert set(scores) == levels, criterion.name
        assert all(scores.count(level) >= 2 for level in levels), criterion.name
        for example in criterion.examples:
            assert set(example) == {"score", "text", "why"}, example
            assert example["text"].strip() and example["why"].strip(), example


def test_haiku_5_5_estimates_more_tokens_for_the_same_prefix(rubric: Rubric) -> None:
    from judgeflow.config import DEFAULT_PRICES

    factor = DEFAULT_PRICES["claude-haiku-5-5"].tokenizer_factor
    plain, scaled = prefix_report(rubric), prefix_report(rubric, tokenizer_factor=factor)
    assert scaled.prefix_tokens == pytest.approx(plain.prefix_tokens * 1.3, rel=0.01)
    assert estimate_tokens("x" * 700, factor) == 260 and estimate_tokens("x" * 700) == 200


def usage(write: int = 0, read: int = 0) -> Any:
    from judgeflow.records import Usage

    return Usage(input_tokens=500, output_tokens=80, cache_write_tokens=write, cache_read_tokens=read)


def test_the_cache_minimum_is_learned_from_usage_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    from judgeflow.judging.prompt_cache import UNCACHED_REPLIES_BEFORE_WARNING, CacheMinimumWatch

    watch = CacheMinimumWatch("claude-haiku-5-5")
    with caplog.at_level("WARNING", logger="judgeflow.judging.prompt_cache"):
        for _ in range(UNCACHED_REPLIES_BEFORE_WARNING + 5):
            watch.observe(usage())
    warnings = [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.prompt_cache"]
    assert len(warnings) == 1, "once per task, however many replies follow"
    assert "below the model's minimum" in warnings[0] and "claude-haiku-5-5" in warnings[0]


@pytest.mark.parametrize(
    "replies",
    [
        pytest.param([usage(write=5000)] + [usage()] * 5, id="a-write-proves-caching-works"),
        pytest.param([usage(read=5000)] + [usage()] * 5, id="a-read-too"),
        pytest.param([usage(), usage(), usage(read=5000), usage()], id="caching-seen-before-the-third"),
    ],
)
def test_no_warning_once_the_cache_was_seen_working(replies: list[Any], caplog: pytest.LogCaptureFixture) -> None:
    from judgeflow.judging.prompt_cache import CacheMinimumWatch

    watch = CacheMinimumWatch("claude-haiku-5-5")
    with caplog.at_level("WARNING", logger="judgeflow.judging.prompt_cache"):
        for reply in replies:
            watch.observe(reply)
    assert not caplog.records


def test_requests_that_mark_nothing_cacheable_are_not_counted(caplog: pytest.LogCaptureFixture) -> None:
    from judgeflow.judging.prompt_cache import CacheMinimumWatch, marks_cacheable

    assert not marks_cacheable({"system": [{"type": "text", "text": "x"}], "tools": [{"name": "t"}]})
    assert marks_cacheable({"system": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]})
    watch = CacheMinimumWatch("claude-haiku-4-5")
    with caplog.at_level("WARNING", logger="judgeflow.judging.prompt_cache"):
        for _ in range(10):
            watch.observe(usage(), cacheable=False)
    assert not caplog.records


def test_a_prefix_below_the_emulators_minimum_is_logged_by_a_real_task(
    rubric: Rubric, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end through the judge call: the emulator, told Haiku 5.5's minimum is larger than the
    prefix, never caches it; the task's caller says so once."""
    import asyncio

    from judgeflow.config import Settings
    from judgeflow.judging.runner import BatchScorer
    from judgeflow.judging.verdict_cache import NullVerdictCache

    class Sink:
        def write(self, scores: Any, errors: Any) -> None:
            self.scored = len(scores)

    haiku_55 = rubric.model_copy(update={"model": "claude-haiku-5-5"})
    items = [ResponseItem(response_id=i, question="q?", context="", response=f"answer {i}") for i in range(6)]
    config = EmulatorConfig(latency_median_s=0.0, min_cacheable_tokens={"claude-haiku-5-5": 50_000})
    with EmulatorServer(config) as emulator, caplog.at_level("WARNING", logger="judgeflow.judging.prompt_cache"):

        async def judge() -> None:
            async with anthropic.AsyncAnthropic(api_key="k", base_url=emulator.url) as client:
                scorer = BatchScorer(
                    client=client,
                    rubric=haiku_55,
                    settings=Settings(judge={"concurrency": 1}),
                    cache=NullVerdictCache(),
                    sink=Sink(),
                    dag_run_id="watch",
                )
                totals = await scorer.run([items])
                assert totals.scored == 6 and totals.usage.cache_write_tokens == 0

        asyncio.run(judge())
        assert emulator.stats()["cache_creation_tokens_total"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "judgeflow.judging.prompt_cache"]
    assert len(warnings) == 1 and "claude-haiku-5-5" in warnings[0]
