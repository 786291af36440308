"""The mapped score operator: realtime in the task, or Message Batches with a deferrable wait.

It only orchestrates (``execute``, ``execute_complete``); what each step does lives in
:mod:`judgeflow.tasks.pipeline` and :mod:`judgeflow.tasks.batch_stages`. While Anthropic works on a
batch the task is deferred to the provider's ``AnthropicBatchTrigger``, so it holds no worker slot.

Like the provider's ``AnthropicBatchOperator`` holds its hook, each run of ``execute`` or
``execute_complete`` opens its job (the suite, the batch's rubric, warehouse, cache) and hook once,
hands them to every stage, and closes the job when it returns, fails or defers. The suite's file is
the operator's own argument, so score tasks of different suites share the workers.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseOperator

from judgeflow.tasks import batch_stages, pipeline
from judgeflow.tasks.job import Job


class ScoreBatchOperator(BaseOperator):
    """Judge one batch of the run's responses under one rubric; returns counts, never texts."""

    template_fields = ("batch",)

    def __init__(self, *, suite: str, batch: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.batch = batch

    def execute(self, context: Any) -> dict[str, Any]:
        with self._job(context) as job:
            if job.mode == "realtime":
                return pipeline.score_realtime(job, self.batch)
            hook = self._hook(job)
            batch_stages.submit_message_batches(job, hook, self.batch)
            return self._wait_or_collect(job, hook)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow.providers.anthropic.hooks.anthropic import validate_execute_complete_event

        with self._job(context) as job:
            event = validate_execute_complete_event(event)
            hook = self._hook(job)
            if event["status"] != "success":
                self.log.warning("Message Batch %s: %s", event.get("batch_id"), event.get("message"))
            if event["status"] == "timeout":
                batch_stages.cancel_message_batches(job, hook, self.batch)
            return self._wait_or_collect(job, hook)

    def _wait_or_collect(self, job: Job, hook: Any) -> dict[str, Any]:
        """Defer on the next open batch; when none is open, collect every ended one."""
        from airflow.providers.anthropic.triggers.batch import AnthropicBatchTrigger

        wait = batch_stages.next_wait(job, hook, self.batch)
        if wait is not None and wait.end_time <= time.time():
            batch_stages.cancel_message_batches(job, hook, self.batch)
            wait = batch_stages.next_wait(job, hook, self.batch)
        if wait is not None:
            self.defer(
                trigger=AnthropicBatchTrigger(
                    conn_id=wait.conn_id,
                    batch_id=wait.batch_id,
                    poll_interval=wait.poll_interval_s,
                    end_time=wait.end_time,
                ),
                method_name="execute_complete",
                timeout=dt.timedelta(seconds=max(60.0, wait.end_time - time.time()) + 3600),
            )
        return {"rubric": job.rubric.name, **batch_stages.collect_message_batches(job, hook, self.batch)}

    @contextmanager
    def _job(self, context: Any) -> Iterator[Job]:
        rubric = self.batch.get("rubric") or ""
        judged = f"{rubric} " if rubric else ""
        context["batch_label"] = f"{judged}batch {self.batch['batch_index']} ({self.batch['size']} responses)"
        with Job.open(self.suite, context, rubric=rubric or None) as job:
            yield job

    @staticmethod
    def _hook(job: Job) -> Any:
        from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

        return AnthropicHook(conn_id=job.settings.connections.anthropic)
