"""The score step in batch mode, one function per stage the operator orchestrates.

    submit_message_batches -> (deferred: the provider's AnthropicBatchTrigger waits) ->
    next_wait -> collect_message_batches

Every stage reads its state from the warehouse, so a retried, restarted or resumed task picks up
where the last one stopped: submitted batches are re-attached to, collected ones are not read twice.
Each stage takes the task's open :class:`~judgeflow.tasks.job.Job` and an ``AnthropicHook``, so one
task run opens its settings, warehouse and client once whatever the number of stages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from typing import Any, NamedTuple

from judgeflow.records import BatchRef
from judgeflow.tasks.job import Job
from judgeflow.tasks.pipeline import read_batch

log = logging.getLogger(__name__)

SUBMITTED, COLLECTED = "submitted", "collected"


def submit_message_batches(job: Job, hook: Any, batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Submit the task's unscored responses as Message Batches, unless it already did.

    Each batch id is written to ``judge_message_batches`` right after it is created and before any
    wait, so a task killed after submitting re-attaches instead of paying twice.
    """
    from judgeflow.judging.message_batches import BatchJudge, split_requests

    ref = BatchRef.from_xcom(batch)
    existing = job.warehouse.batches.for_task(ref)
    if existing:
        log.info("%s: re-attaching to %d Message Batch(es) submitted earlier", ref.label, len(existing))
        return existing
    judge = BatchJudge(rubric=job.rubric, settings=job.settings, dag_run_id=job.run.run_id)
    prepared = judge.prepare(read_batch(job, ref), job.cache)
    job.warehouse.write(prepared.scores, prepared.errors)
    if job.settings.batch_mode.warm_cache and prepared.requests:
        _warm_prompt_cache(job, prepared.requests.pop(0), prepared.first_items, label=ref.label)
    parts = split_requests(prepared.requests, max_requests=job.settings.batch_mode.max_requests)
    for part, requests in enumerate(parts):
        created = hook.create_batch(requests, model=job.rubric.model)
        job.warehouse.batches.record(
            ref=ref, part=part, anthropic_batch_id=created.id, requests=len(requests), created_at=_utcnow()
        )
        log.info("%s: submitted Message Batch %s with %d requests", ref.label, created.id, len(requests))
    log.info(
        "%s: %d from the cache, %d invalid, %d distinct inputs sent as Message Batches",
        ref.label,
        len(prepared.scores),
        len(prepared.errors),
        len(prepared.requests),
    )
    return job.warehouse.batches.for_task(ref)


def _warm_prompt_cache(job: Job, request: dict[str, Any], items: list[Any], *, label: str) -> None:
    """Judge the first input live before the batch goes out, so its request writes the rubric's
    prefix to the prompt cache (for an hour with ``judge.cache_ttl: 1h``) and the batch's requests
    find it there. The input is taken out of the batch and recorded like any realtime verdict (at
    the realtime price, under the budget caps), so nothing is judged twice and nothing is lost."""
    judged = _judge_in_realtime(job, items)
    log.info(
        "%s: warmed the prompt cache (ttl %s) with request %s judged live (%d responses)",
        label,
        job.settings.judge.cache_ttl,
        request["custom_id"],
        judged,
    )


class Wait(NamedTuple):
    """What the operator defers on: one open batch, and when to give up on it."""

    conn_id: str
    batch_id: str
    poll_interval_s: float
    end_time: float


def next_wait(job: Job, hook: Any, batch: dict[str, Any]) -> Wait | None:
    """The first batch still in progress, or ``None`` when everything has ended and can be collected.

    The deadline runs from the earliest submission, so a resumed task does not get a fresh one."""
    rows = job.warehouse.batches.for_task(BatchRef.from_xcom(batch))
    open_ids = _still_open(hook, rows)
    if not open_ids:
        return None
    first = min(row["created_at"] for row in rows)
    end_time = first.timestamp() + job.settings.batch_mode.deadline_hours * 3600
    return Wait(job.settings.connections.anthropic, open_ids[0], job.settings.batch_mode.poll_interval_s, end_time)


def cancel_message_batches(job: Job, hook: Any, batch: dict[str, Any]) -> None:
    """Past the deadline: ask the API to cancel what is still open (its results say ``canceled``)."""
    for batch_id in _still_open(hook, job.warehouse.batches.for_task(BatchRef.from_xcom(batch))):
        log.warning("Message Batch %s is past the deadline: cancelling it", batch_id)
        hook.cancel_batch(batch_id)


def _still_open(hook: Any, rows: list[dict[str, Any]]) -> list[str]:
    """Ids of the submitted batches that the API still reports as in progress."""
    from airflow.providers.anthropic.hooks.anthropic import BatchStatus

    pending = [row["anthropic_batch_id"] for row in rows if row["status"] == SUBMITTED]
    return [batch_id for batch_id in pending if BatchStatus.is_in_progress(hook.get_batch(batch_id).processing_status)]


def collect_message_batches(job: Job, hook: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Stream the ended batches' results into the warehouse; judge again in realtime what failed in
    a batch or never came back from one.

    Every response of the task still owed a verdict (not scored, no error recorded by this run) is
    matched against the results of all its submitted batches at once: one whose result is in none
    of them is judged again like an errored one, so every staged response ends with a score or an
    error. The realtime retries count against the run and day budget caps like every request."""
    from judgeflow.judging.message_batches import BatchJudge

    ref = BatchRef.from_xcom(batch)
    submitted = [row["anthropic_batch_id"] for row in job.warehouse.batches.for_task(ref) if row["status"] == SUBMITTED]
    totals: dict[str, Any] = {"scored_from_batches": 0, "retried_in_realtime": 0, "failed_in_batch": {}}
    if submitted:
        judge = BatchJudge(rubric=job.rubric, settings=job.settings, dag_run_id=job.run.run_id)
        results = itertools.chain.from_iterable(hook.stream_batch_results(batch_id) for batch_id in submitted)
        collected, fresh = judge.collect(results, read_batch(job, ref, skip_errored=True))
        job.warehouse.write(collected.scores, [])
        job.cache.put_many(fresh)
        totals["scored_from_batches"] = len(collected.scores)
        totals["failed_in_batch"] = dict(collected.reasons)
        if collected.retry:
            log.info(
                "%s: %d responses failed in or are missing from batches %s (%s); judging them in realtime",
                ref.label,
                len(collected.retry),
                submitted,
                collected.reasons,
            )
            totals["retried_in_realtime"] = _judge_in_realtime(job, collected.retry)
        for batch_id in submitted:
            job.warehouse.batches.set_status(batch_id, COLLECTED)
    log.info("%s: collected %s", ref.label, totals)
    return totals


def _judge_in_realtime(job: Job, items: list[Any]) -> int:
    from judgeflow.judging.session import judge_stream

    totals = asyncio.run(
        judge_stream(
            [items],
            settings=job.settings,
            rubric=job.rubric,
            cache=job.cache,
            sink=job.warehouse,
            dag_run_id=job.run.run_id,
            budget_caps=job.budget_caps(),
        )
    )
    return totals.items


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
