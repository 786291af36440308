"""The score step in batch mode, one function per stage the operator orchestrates.

    submit_message_batches -> (deferred: the provider's AnthropicBatchTrigger waits) ->
    open_message_batches -> collect_message_batches

Every stage reads its state from the warehouse, so a retried, restarted or resumed task picks up
where the last one stopped: submitted batches are re-attached to, collected ones are not read twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any, NamedTuple

from judgeflow.pipeline import Job
from judgeflow.records import BatchRef

log = logging.getLogger(__name__)

SUBMITTED, COLLECTED = "submitted", "collected"


def run_mode(settings_path: str, context: Any) -> str:
    """``realtime`` or ``batch``: the run's param, else the settings."""
    job = Job.open(settings_path, context)
    return job.run.params.mode or job.settings.mode


def submit_message_batches(settings_path: str, batch: dict[str, Any], context: Any) -> list[dict[str, Any]]:
    """Submit the task's unscored responses as Message Batches, unless it already did.

    Each batch id is written to ``judge_message_batches`` right after it is created and before any
    wait, so a task killed after submitting re-attaches instead of paying twice.
    """
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

    from judgeflow.cache import open_cache
    from judgeflow.engine.message_batches import BatchJudge, split_requests

    job, ref = Job.open(settings_path, context), BatchRef.from_xcom(batch)
    existing = job.warehouse.message_batches_for(ref)
    if existing:
        log.info("%s: re-attaching to %d Message Batch(es) submitted earlier", ref.label, len(existing))
        return existing
    cache = open_cache(job.settings.cache, redis_conn_id=job.settings.connections.cache)
    try:
        judge = BatchJudge(rubric=job.rubric, settings=job.settings, dag_run_id=job.run.run_id)
        prepared = judge.prepare(_read(job, ref), cache)
    finally:
        cache.close()
    job.warehouse.write(prepared.scores, prepared.errors)
    hook = AnthropicHook(conn_id=job.settings.connections.anthropic)
    parts = split_requests(prepared.requests, max_requests=job.settings.batch_mode.max_requests)
    for part, requests in enumerate(parts):
        created = hook.create_batch(requests, model=job.rubric.model)
        job.warehouse.record_message_batch(
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
    return job.warehouse.message_batches_for(ref)


class Wait(NamedTuple):
    """What the operator defers on: one open batch, and when to give up on it."""

    conn_id: str
    batch_id: str
    poll_interval_s: float
    end_time: float


def next_wait(settings_path: str, batch: dict[str, Any], context: Any) -> Wait | None:
    """The first batch still in progress, or ``None`` when everything has ended and can be collected.

    The deadline runs from the earliest submission, so a resumed task does not get a fresh one."""
    job, ref = Job.open(settings_path, context), BatchRef.from_xcom(batch)
    rows = job.warehouse.message_batches_for(ref)
    open_ids = _still_open(job, rows)
    if not open_ids:
        return None
    first = min(row["created_at"] for row in rows)
    end_time = first.timestamp() + job.settings.batch_mode.deadline_hours * 3600
    return Wait(job.settings.connections.anthropic, open_ids[0], job.settings.batch_mode.poll_interval_s, end_time)


def open_message_batches(settings_path: str, batch: dict[str, Any], context: Any) -> list[str]:
    """Ids of the task's submitted batches that the API still reports as in progress."""
    job, ref = Job.open(settings_path, context), BatchRef.from_xcom(batch)
    return _still_open(job, job.warehouse.message_batches_for(ref))


def _still_open(job: Job, rows: list[dict[str, Any]]) -> list[str]:
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook, BatchStatus

    hook = AnthropicHook(conn_id=job.settings.connections.anthropic)
    pending = [row["anthropic_batch_id"] for row in rows if row["status"] == SUBMITTED]
    return [batch_id for batch_id in pending if BatchStatus.is_in_progress(hook.get_batch(batch_id).processing_status)]


def cancel_message_batches(settings_path: str, batch: dict[str, Any], context: Any) -> None:
    """Past the deadline: ask the API to cancel what is still open (its results say ``canceled``)."""
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

    job = Job.open(settings_path, context)
    hook = AnthropicHook(conn_id=job.settings.connections.anthropic)
    for batch_id in open_message_batches(settings_path, batch, context):
        log.warning("Message Batch %s is past the deadline: cancelling it", batch_id)
        hook.cancel_batch(batch_id)


def collect_message_batches(settings_path: str, batch: dict[str, Any], context: Any) -> dict[str, Any]:
    """Stream the ended batches' results into the warehouse; judge what failed again in realtime."""
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

    from judgeflow.cache import open_cache
    from judgeflow.engine.message_batches import BatchJudge
    from judgeflow.engine.session import judge_stream

    job, ref = Job.open(settings_path, context), BatchRef.from_xcom(batch)
    hook = AnthropicHook(conn_id=job.settings.connections.anthropic)
    judge = BatchJudge(rubric=job.rubric, settings=job.settings, dag_run_id=job.run.run_id)
    cache = open_cache(job.settings.cache, redis_conn_id=job.settings.connections.cache)
    totals: dict[str, Any] = {"scored_from_batches": 0, "retried_in_realtime": 0, "failed_in_batch": {}}
    try:
        for row in job.warehouse.message_batches_for(ref):
            if row["status"] != SUBMITTED:
                continue
            batch_id = row["anthropic_batch_id"]
            collected, fresh = judge.collect(hook.stream_batch_results(batch_id), _read(job, ref))
            job.warehouse.write(collected.scores, [])
            cache.put_many(fresh)
            totals["scored_from_batches"] += len(collected.scores)
            for reason, n in collected.reasons.items():
                totals["failed_in_batch"][reason] = totals["failed_in_batch"].get(reason, 0) + n
            if collected.retry:
                log.info(
                    "%s: %d responses failed in batch %s (%s); judging them in realtime",
                    ref.label,
                    len(collected.retry),
                    batch_id,
                    collected.reasons,
                )
                realtime = asyncio.run(
                    judge_stream(
                        [collected.retry],
                        settings=job.settings,
                        rubric=job.rubric,
                        cache=cache,
                        sink=job.warehouse,
                        dag_run_id=job.run.run_id,
                        budget_caps=[],
                    )
                )
                totals["retried_in_realtime"] += realtime.items
            job.warehouse.set_message_batch_status(batch_id, COLLECTED)
    finally:
        cache.close()
    log.info("%s: collected %s", ref.label, totals)
    return totals


def _read(job: Job, ref: BatchRef) -> Any:
    return job.warehouse.read_batch(
        ref,
        rubric_name=job.rubric.name,
        rubric_version=job.rubric.version_key,
        dag_run_id=job.run.run_id,
        rescore=job.run.params.rescore,
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
