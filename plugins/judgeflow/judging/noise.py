"""Judge noise: ask the judge again about a sampled response, past the verdict cache.

A judge that gives the same response a 4 today and a 2 tomorrow makes every daily mean noisier
than it looks; asking a small sample twice measures by how much. Which responses are asked again
is a hash of the rubric and the response id against ``noise.rate``, so a rerun asks about the same
ones. The second ask goes through the same :class:`~judgeflow.judging.judge_call.JudgeCaller` as
the first (rate limit, retries, budget), so its cost counts against the run's caps, but never
through the cache: a cached verdict asked again would agree with itself and measure nothing.

The primary verdict is recorded before the second ask is made, so the second ask failing (budget,
API error, malformed reply) loses nothing: its row says why and has no second scores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from judgeflow.judging.judge_call import Judged
from judgeflow.records import NoiseRecord, Usage, Verdict

log = logging.getLogger(__name__)

HASH_SPACE = 1 << 32


def in_noise_sample(rubric_name: str, response_id: Any, rate: float) -> bool:
    """Is this response asked twice? Deterministic, and independent of the run's own sampling."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"noise\n{rubric_name}\n{response_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < rate * HASH_SPACE


def scores_of(verdict: Verdict) -> dict[str, int]:
    return {name: c.score for name, c in verdict.criteria.items()}


async def ask_again(
    judge: Callable[[], Awaitable[Any]],
    first: Verdict,
    *,
    response_id: Any,
    rubric_name: str,
    rubric_version: str,
    dag_run_id: str,
    cost_of: Callable[[Usage], float],
    now: Callable[[], dt.datetime],
) -> tuple[NoiseRecord, Usage]:
    """Judge once more with ``judge`` and pair the answer with ``first``; returns the row and the
    usage the second ask cost (paid for even when it failed)."""
    usage, second, error = Usage(), {}, None
    try:
        outcome = await judge()
    except Exception as exc:  # never let the extra ask take the run (and its primary scores) down
        log.exception("noise re-ask of response %s failed", response_id)
        error = f"{type(exc).__name__}: {exc}"
    else:
        usage = outcome.usage
        if isinstance(outcome, Judged):
            second = scores_of(outcome.verdict)
        else:
            error = f"{outcome.kind}: {outcome.reason}"
    record = NoiseRecord(
        response_id=response_id,
        rubric_name=rubric_name,
        rubric_version=rubric_version,
        dag_run_id=dag_run_id,
        first=scores_of(first),
        second=second,
        cost_usd=cost_of(usage),
        error=None if error is None else error[:2000],
        recorded_at=now(),
    )
    return record, usage
