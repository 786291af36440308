"""Batch mode: judge a task's responses through the Message Batches API, at half the price.

Requests are keyed by a ``custom_id`` derived from the verdict cache key, so the mapping from a
result back to its responses needs no table: the task re-reads its batch and recomputes the keys
(results come back in any order, and possibly after a restart). One request per distinct input;
a batch is split at 100,000 requests or 256 MB. Results that are not a valid verdict (errored,
expired, canceled, malformed), and requests with no result at all, are judged again in realtime by
the caller.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from judgeflow.config import ModelPrice, Settings
from judgeflow.judging.judge_call import usage_of
from judgeflow.judging.outcomes import OutcomeRecorder, response_key
from judgeflow.judging.pricing import cost_usd
from judgeflow.judging.prompt import build_request
from judgeflow.judging.verdict import parse_verdict
from judgeflow.judging.verdict_cache import VerdictCache
from judgeflow.records import ErrorKind, ErrorRecord, ResponseItem, ScoreRecord, Usage, Verdict
from judgeflow.rubric import Rubric

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_BATCH = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
_BYTES_MARGIN = 1024 * 1024  # the request envelope around the requests
NO_RESULT = "no_result"
"""The reason counted for a response whose request has no line in its batch's results."""


def custom_id_for(key: str) -> str:
    """A valid ``custom_id`` (``^[a-zA-Z0-9_-]{1,64}$``) for a verdict cache key."""
    return "j" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:48]


def split_requests(
    requests: Iterable[dict[str, Any]], *, max_requests: int = MAX_REQUESTS_PER_BATCH, max_bytes: int = MAX_BATCH_BYTES
) -> Iterator[list[dict[str, Any]]]:
    """Cut requests into batches the API accepts: at most ``max_requests`` and ``max_bytes`` each."""
    part: list[dict[str, Any]] = []
    size = _BYTES_MARGIN
    for request in requests:
        request_bytes = len(json.dumps(request, ensure_ascii=False).encode("utf-8")) + 1
        if part and (len(part) >= max_requests or size + request_bytes > max_bytes):
            yield part
            part, size = [], _BYTES_MARGIN
        part.append(request)
        size += request_bytes
    if part:
        yield part


@dataclass
class Prepared:
    """What one task's responses turned into before submission."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    scores: list[ScoreRecord] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    first_items: list[ResponseItem] = field(default_factory=list)
    """The responses behind ``requests[0]`` (one input, maybe repeated): what a cache warm-up judges live."""


@dataclass
class Collected:
    """What the ended batches gave back: scores, and the responses to judge again in realtime."""

    scores: list[ScoreRecord] = field(default_factory=list)
    retry: list[ResponseItem] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)


class BatchJudge:
    """Builds batch requests for a task's responses and turns batch results into score records."""

    def __init__(
        self,
        *,
        rubric: Rubric,
        settings: Settings,
        dag_run_id: str,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._rubric = rubric
        self._settings = settings
        self._price: ModelPrice = settings.price_for(rubric.model)
        self._outcomes = OutcomeRecorder(rubric, dag_run_id, settings.judge.max_response_chars, now)

    def key(self, item: ResponseItem) -> str | None:
        return response_key(self._rubric, item)

    def prepare(self, chunks: Iterable[Sequence[ResponseItem]], cache: VerdictCache) -> Prepared:
        """Invalid responses become errors, cache hits become scores, the rest one request per input."""
        prepared = Prepared()
        seen: set[str] = set()
        for chunk in chunks:
            keyed = [(item, self.key(item)) for item in chunk]
            hits = cache.get_many(sorted({k for _, k in keyed if k}))
            for item, key in keyed:
                if key is None:
                    prepared.errors.append(self.error(item, ErrorKind.INVALID_INPUT, "response is NULL or empty"))
                elif key in hits:
                    prepared.scores.append(self.score(item, hits[key], Usage(), cache_hit=True))
                elif key not in seen:
                    seen.add(key)
                    if not prepared.requests:
                        prepared.first_items.append(item)
                    params = build_request(
                        self._rubric,
                        item,
                        max_response_chars=self._settings.judge.max_response_chars,
                        max_output_tokens=self._settings.judge.max_output_tokens,
                        cache_ttl=self._settings.judge.cache_ttl,
                    ).params
                    prepared.requests.append({"custom_id": custom_id_for(key), "params": params})
                elif prepared.requests and prepared.requests[0]["custom_id"] == custom_id_for(key):
                    prepared.first_items.append(item)
        return prepared

    def collect(
        self, results: Iterable[Any], chunks: Iterable[Sequence[ResponseItem]]
    ) -> tuple[Collected, dict[str, Verdict]]:
        """Match results to responses by ``custom_id``; the first response of an input pays for it.

        ``chunks`` are the responses still owed a verdict. One whose result is not in ``results``
        (the API promises one per request, but a lost line must not lose a response) is retried
        like a failed one, with the reason :data:`NO_RESULT`."""
        verdicts: dict[str, tuple[Verdict, Usage]] = {}
        failed: dict[str, str] = {}
        for result in results:
            outcome = result.result
            if outcome.type != "succeeded":
                failed[result.custom_id] = outcome.type
                continue
            parsed = parse_verdict(list(outcome.message.content), self._rubric)
            if isinstance(parsed, Verdict):
                verdicts[result.custom_id] = (parsed, usage_of(outcome.message))
            else:
                failed[result.custom_id] = "malformed_verdict"
        collected = Collected()
        fresh: dict[str, Verdict] = {}
        paid: set[str] = set()
        for chunk in chunks:
            for item in chunk:
                key = self.key(item)
                if key is None:
                    continue
                custom_id = custom_id_for(key)
                if custom_id in verdicts:
                    verdict, usage = verdicts[custom_id]
                    first = custom_id not in paid
                    paid.add(custom_id)
                    collected.scores.append(self.score(item, verdict, usage if first else Usage(), cache_hit=not first))
                    fresh[key] = verdict
                else:  # failed in the batch, or never came back from it: judged again in realtime
                    collected.retry.append(item)
                    reason = failed.get(custom_id, NO_RESULT)
                    collected.reasons[reason] = collected.reasons.get(reason, 0) + 1
        return collected, fresh

    def score(self, item: ResponseItem, verdict: Verdict, usage: Usage, *, cache_hit: bool) -> ScoreRecord:
        cost = cost_usd(usage, self._price, batch=True)
        return self._outcomes.score(item, verdict, usage, cost_usd=cost, latency_ms=0, cache_hit=cache_hit)

    def error(self, item: ResponseItem, kind: ErrorKind, reason: str) -> ErrorRecord:
        return self._outcomes.error(item, kind, reason)
