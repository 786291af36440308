"""One score task's judging session: open the client, limiter and budget, run, close them.

The pipeline hands over settings, the rubric, a cache, a sink and a stream of responses; the engine
owns everything that talks to the API or shares its limits with other tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from judgeflow.config import Settings
from judgeflow.judging.budget import Cap, open_budget
from judgeflow.judging.client import open_async_client
from judgeflow.judging.ratelimit import open_rate_limiter
from judgeflow.judging.runner import BatchScorer, BatchTotals, NoiseSink, ResultSink
from judgeflow.judging.verdict_cache import VerdictCache
from judgeflow.records import ResponseItem
from judgeflow.rubric import Rubric


async def judge_stream(
    chunks: Iterable[Sequence[ResponseItem]],
    *,
    settings: Settings,
    rubric: Rubric,
    cache: VerdictCache,
    sink: ResultSink,
    dag_run_id: str,
    budget_caps: list[Cap],
    noise_sink: NoiseSink | None = None,
) -> BatchTotals:
    """Judge every response in ``chunks``; the limiter and budget are shared through Redis when
    the cache connection reaches one, so parallel tasks respect one account limit and one budget."""
    client = await open_async_client(settings.connections.anthropic, timeout_s=settings.judge.request_timeout_s)
    requests_per_minute, input_tokens_per_minute = settings.limits.effective()
    limiter = await open_rate_limiter(
        requests_per_minute=requests_per_minute,
        input_tokens_per_minute=input_tokens_per_minute,
        burst_seconds=settings.limits.burst_seconds,
        redis_conn_id=settings.connections.cache,
        api_key=f"{client.base_url}|{client.api_key}",
        model=rubric.model,
    )
    budget = await open_budget(settings.budget, redis_conn_id=settings.connections.cache, caps=budget_caps)
    async with client:
        scorer = BatchScorer(
            client=client,
            rubric=rubric,
            settings=settings,
            cache=cache,
            sink=sink,
            dag_run_id=dag_run_id,
            limiter=limiter,
            budget=budget,
            noise_sink=noise_sink,
        )
        try:
            return await scorer.run(chunks)
        finally:
            await limiter.aclose()
            await budget.aclose()
