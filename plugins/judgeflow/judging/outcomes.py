"""What a judged response becomes, the same way in realtime and in batch mode.

One place decides a response's verdict-cache key (``None`` for a NULL or empty response, which is
never sent) and how a verdict or a failure turns into the row the warehouse stores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from judgeflow.judging.verdict_cache import cache_key
from judgeflow.records import ErrorKind, ErrorRecord, ResponseItem, ScoreRecord, Usage, Verdict
from judgeflow.rubric import Rubric

MAX_REASON_CHARS = 2000


def response_key(rubric: Rubric, item: ResponseItem) -> str | None:
    """The verdict cache key of a response under this rubric; ``None`` when there is nothing to judge."""
    if item.response is None or not item.response.strip():
        return None
    return cache_key(
        rubric_version_key=rubric.version_key,
        model=rubric.model,
        question=item.question,
        context=item.context,
        response=item.response,
    )


@dataclass(frozen=True, slots=True)
class OutcomeRecorder:
    """Builds score and error rows for one rubric, run and clock."""

    rubric: Rubric
    dag_run_id: str
    max_response_chars: int
    now: Callable[[], dt.datetime]

    def score(
        self, item: ResponseItem, verdict: Verdict, usage: Usage, *, cost_usd: float, latency_ms: int, cache_hit: bool
    ) -> ScoreRecord:
        return ScoreRecord(
            response_id=item.response_id,
            rubric_name=self.rubric.name,
            rubric_version=self.rubric.version_key,
            overall=verdict.overall,
            criteria=verdict.criteria,
            model=self.rubric.model,
            usage=usage,
            cost_usd=cost_usd,
            latency_ms=latency_ms,
            cache_hit=cache_hit,
            truncated=len(item.response or "") > self.max_response_chars,
            dag_run_id=self.dag_run_id,
            scored_at=self.now(),
        )

    def error(
        self, item: ResponseItem, kind: ErrorKind, reason: str, *, attempts: int = 0, raw_reply: str | None = None
    ) -> ErrorRecord:
        return ErrorRecord(
            response_id=item.response_id,
            rubric_name=self.rubric.name,
            rubric_version=self.rubric.version_key,
            kind=kind,
            reason=reason[:MAX_REASON_CHARS],
            attempts=attempts,
            dag_run_id=self.dag_run_id,
            recorded_at=self.now(),
            raw_reply=raw_reply,
        )
