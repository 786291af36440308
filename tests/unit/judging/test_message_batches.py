"""Message Batches mode: custom_id mapping, batch splitting, and BatchJudge's requests and results."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from judgeflow.config import JudgeConfig, Settings
from judgeflow.judging.message_batches import (
    MAX_REQUESTS_PER_BATCH,
    NO_RESULT,
    BatchJudge,
    custom_id_for,
    split_requests,
)
from judgeflow.judging.pricing import cost_usd
from judgeflow.judging.prompt import VERDICT_TOOL_NAME, build_request
from judgeflow.records import CriterionScore, ErrorKind, ResponseItem, Usage, Verdict
from judgeflow.rubric import Rubric, load_rubric
from tests.support import ROOT

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@pytest.mark.parametrize("key", ["judgeflow:v1:" + "ab" * 32, "", "ünïcode:ключ", "x" * 10_000])
def test_custom_ids_are_valid_and_stable(key: str) -> None:
    assert CUSTOM_ID.match(custom_id_for(key))
    assert custom_id_for(key) == custom_id_for(key)


def test_a_custom_id_is_j_and_the_first_48_hex_digits_of_the_key_s_sha256() -> None:
    """Stable across releases: a task restarted after an upgrade recomputes the ids of its batch's results."""
    import hashlib

    assert custom_id_for("judgeflow:v1:ключ") == "j" + hashlib.sha256("judgeflow:v1:ключ".encode()).hexdigest()[:48]
    assert len(custom_id_for("")) == 49


def test_different_keys_get_different_custom_ids() -> None:
    ids = {custom_id_for(f"judgeflow:v1:{n}") for n in range(10_000)}
    assert len(ids) == 10_000


def request(n: int, size: int = 10) -> dict[str, object]:
    return {"custom_id": f"r{n}", "params": {"messages": [{"role": "user", "content": "x" * size}]}}


def test_split_by_request_count() -> None:
    parts = list(split_requests((request(n) for n in range(25)), max_requests=10))
    assert [len(p) for p in parts] == [10, 10, 5]
    assert [r["custom_id"] for p in parts for r in p] == [f"r{n}" for n in range(25)]


def test_a_request_counts_its_json_bytes_and_a_newline_and_may_fill_a_batch_exactly() -> None:
    one = len(json.dumps(request(0, size=1000)).encode()) + 1
    exact = 1024 * 1024 + 3 * one
    assert [len(p) for p in split_requests((request(n, size=1000) for n in range(4)), max_bytes=exact)] == [3, 1]
    short = exact - 1
    assert [len(p) for p in split_requests((request(n, size=1000) for n in range(4)), max_bytes=short)] == [2, 2]


def test_split_by_bytes_keeps_every_part_under_the_limit() -> None:
    one = len(json.dumps(request(0, size=100_000)).encode()) + 1
    limit = 1024 * 1024 + 3 * one + 10  # the envelope margin plus room for three requests
    parts = list(split_requests((request(n, size=100_000) for n in range(10)), max_bytes=limit))
    assert [len(p) for p in parts] == [3, 3, 3, 1]


def test_the_api_limit_is_the_default() -> None:
    assert MAX_REQUESTS_PER_BATCH == 100_000
    assert list(split_requests([])) == []


# BatchJudge: requests from responses, scores from results (found by mutation testing: docs/mutation.md).
# The integration test tests/integration/test_batch_mode.py runs the same through a DAG and the emulator.


RUBRIC: Rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
SETTINGS = Settings(judge=JudgeConfig(max_response_chars=100, max_output_tokens=77))
RUN_ID = "manual__2026-11-30"


class DictCache:
    """A verdict cache in a dict (the real ones are tested in test_verdict_cache.py)."""

    def __init__(self, verdicts: Mapping[str, Verdict] | None = None) -> None:
        self.verdicts = dict(verdicts or {})
        self.asked: list[list[str]] = []

    def get_many(self, keys: Sequence[str]) -> dict[str, Verdict]:
        self.asked.append(list(keys))
        return {k: self.verdicts[k] for k in keys if k in self.verdicts}

    def put_many(self, items: Mapping[str, Verdict]) -> None:
        self.verdicts.update(items)

    def describe(self) -> str:
        return "dict"

    def close(self) -> None:
        return None


def judge() -> BatchJudge:
    return BatchJudge(rubric=RUBRIC, settings=SETTINGS, dag_run_id=RUN_ID, now=lambda: NOW)


def answer(i: int, text: str | None = None) -> ResponseItem:
    return ResponseItem(response_id=i, question=f"Q{i}?", context=None, response=text if text is not None else f"A{i}")


VERDICT = Verdict(
    criteria={
        "accuracy": CriterionScore(4, "ok"),
        "tone": CriterionScore(5, "ok"),
        "completeness": CriterionScore(3, "ok"),
    },
    overall=3.9,
)


def succeeded(item: ResponseItem, *, usage: Usage, payload: Any = None) -> Any:
    key = judge().key(item)
    assert key is not None
    data = (
        payload
        if payload is not None
        else {n: {"score": c.score, "rationale": c.rationale} for n, c in VERDICT.criteria.items()}
    )
    message = SimpleNamespace(
        content=[{"type": "tool_use", "id": "t", "name": VERDICT_TOOL_NAME, "input": data}],
        usage=SimpleNamespace(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_write_tokens,
            cache_read_input_tokens=usage.cache_read_tokens,
        ),
    )
    return SimpleNamespace(custom_id=custom_id_for(key), result=SimpleNamespace(type="succeeded", message=message))


def ended(item: ResponseItem, kind: str) -> Any:
    key = judge().key(item)
    assert key is not None
    return SimpleNamespace(custom_id=custom_id_for(key), result=SimpleNamespace(type=kind))


def test_prepare_makes_one_request_per_distinct_input_across_chunks() -> None:
    items = [answer(1), answer(2), ResponseItem(response_id=3, question="Q1?", context=None, response="A1")]  # 3 = 1
    prepared = judge().prepare([items[:2], items[2:]], DictCache())
    key1, key2 = judge().key(items[0]), judge().key(items[1])
    assert key1 is not None and key2 is not None
    params = build_request(RUBRIC, items[0], max_response_chars=100, max_output_tokens=77).params
    assert prepared.requests[0] == {"custom_id": custom_id_for(key1), "params": params}
    assert [r["custom_id"] for r in prepared.requests] == [custom_id_for(key1), custom_id_for(key2)]
    assert prepared.scores == [] and prepared.errors == []


def test_prepare_uses_the_judge_settings_for_each_request() -> None:
    long = answer(1, "x" * 150)
    (request,) = judge().prepare([[long]], DictCache()).requests
    assert request["params"]["max_tokens"] == 77
    assert "x" * 101 not in request["params"]["messages"][0]["content"]


def test_the_first_request_carries_every_response_of_its_input_for_the_cache_warm_up() -> None:
    """``first_items``: the responses behind ``requests[0]``, also its repeats in later chunks (the
    warm-up judges them live and pops that request), and no response of another input."""
    one, two, one_again, two_again = (
        answer(1),
        answer(2),
        ResponseItem(3, "Q1?", None, "A1"),
        ResponseItem(4, "Q2?", None, "A2"),
    )
    prepared = judge().prepare([[one, two], [two_again, one_again]], DictCache())
    assert prepared.first_items == [one, one_again]
    assert [r["custom_id"] for r in prepared.requests] == [custom_id_for(judge().key(i) or "") for i in (one, two)]


def test_prepare_asks_for_the_one_hour_cache_when_the_judge_is_set_to_it() -> None:
    settings = Settings(judge=JudgeConfig(max_response_chars=100, max_output_tokens=77, cache_ttl="1h"))
    batch = BatchJudge(rubric=RUBRIC, settings=settings, dag_run_id=RUN_ID, now=lambda: NOW)
    (request,) = batch.prepare([[answer(1)]], DictCache()).requests
    expected = build_request(RUBRIC, answer(1), max_response_chars=100, max_output_tokens=77, cache_ttl="1h").params
    assert request["params"] == expected
    assert expected != build_request(RUBRIC, answer(1), max_response_chars=100, max_output_tokens=77).params


def test_prepare_turns_empty_responses_into_errors_and_cache_hits_into_free_scores() -> None:
    hit, empty, blank, new = answer(1), answer(2, ""), ResponseItem(3, "Q", None, None), answer(4)
    cache = DictCache({judge().key(hit) or "": VERDICT})
    prepared = judge().prepare([[hit, empty, blank, new]], cache)
    assert cache.asked == [sorted([judge().key(hit) or "", judge().key(new) or ""])]
    assert [(e.response_id, e.kind, e.reason) for e in prepared.errors] == [
        (2, ErrorKind.INVALID_INPUT, "response is NULL or empty"),
        (3, ErrorKind.INVALID_INPUT, "response is NULL or empty"),
    ]
    (score,) = prepared.scores
    assert (score.response_id, score.cache_hit, score.usage, score.cost_usd) == (1, True, Usage(), 0.0)
    assert score.overall == 3.9 and score.dag_run_id == RUN_ID and score.scored_at == NOW
    assert [r["custom_id"] for r in prepared.requests] == [custom_id_for(judge().key(new) or "")]


def test_collect_scores_in_any_order_and_the_first_response_of_an_input_pays() -> None:
    first, twin, other = answer(1), ResponseItem(2, "Q1?", None, "A1"), answer(3)
    paid, other_usage = Usage(100, 20, 30, 40), Usage(10, 2)
    results = [succeeded(other, usage=other_usage), succeeded(first, usage=paid)]
    collected, fresh = judge().collect(results, [[first], [twin, other]])
    by_id = {s.response_id: s for s in collected.scores}
    price = SETTINGS.price_for(RUBRIC.model)
    assert (by_id[1].usage, by_id[1].cache_hit, by_id[1].cost_usd) == (paid, False, cost_usd(paid, price, batch=True))
    assert (by_id[2].usage, by_id[2].cache_hit, by_id[2].cost_usd) == (Usage(), True, 0.0)
    assert by_id[3].usage == other_usage and not by_id[3].cache_hit
    assert by_id[1].cost_usd == cost_usd(paid, price) / 2  # batches are half price
    assert all(s.latency_ms == 0 and s.overall == 3.9 for s in collected.scores)
    assert fresh == {judge().key(first): VERDICT, judge().key(other): VERDICT}
    assert collected.retry == [] and collected.reasons == {}


def test_collect_sends_failed_malformed_and_missing_results_back_with_their_reasons() -> None:
    errored, expired, malformed, missing, also_missing, ok = (answer(i) for i in range(1, 7))
    results = [
        ended(errored, "errored"),
        ended(expired, "expired"),
        succeeded(malformed, usage=Usage(5, 5), payload={"accuracy": {"score": 9}}),
        succeeded(ok, usage=Usage(5, 5)),
    ]
    empty = answer(7, "  ")
    collected, fresh = judge().collect(results, [[errored, expired, malformed], [missing, empty, also_missing, ok]])
    assert [i.response_id for i in collected.retry] == [1, 2, 3, 4, 5]
    assert collected.reasons == {"errored": 1, "expired": 1, "malformed_verdict": 1, NO_RESULT: 2}
    assert NO_RESULT == "no_result"
    assert [s.response_id for s in collected.scores] == [6]
    assert list(fresh) == [judge().key(ok)]
