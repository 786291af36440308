"""The mapped score operator: realtime in the task, or Message Batches with a deferrable wait.

It only orchestrates (``execute``, ``execute_complete``); what each step does lives in
:mod:`judgeflow.pipeline` and :mod:`judgeflow.batch_pipeline`. While Anthropic works on a batch the
task is deferred to the provider's ``AnthropicBatchTrigger``, so it holds no worker slot.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from airflow.sdk import BaseOperator

from judgeflow import batch_pipeline, pipeline


class ScoreBatchOperator(BaseOperator):
    """Judge one batch of the run's responses; returns counts for the summary, never texts."""

    template_fields = ("batch",)

    def __init__(self, *, settings_path: str, batch: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings_path = settings_path
        self.batch = batch

    def execute(self, context: Any) -> dict[str, Any]:
        self._label(context)
        if batch_pipeline.run_mode(self.settings_path, context) == "realtime":
            return pipeline.score_batch(self.settings_path, self.batch, context)
        batch_pipeline.submit_message_batches(self.settings_path, self.batch, context)
        return self._wait_or_collect(context)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from airflow.providers.anthropic.hooks.anthropic import validate_execute_complete_event

        self._label(context)
        event = validate_execute_complete_event(event)
        if event["status"] != "success":
            self.log.warning("Message Batch %s: %s", event.get("batch_id"), event.get("message"))
        if event["status"] == "timeout":
            batch_pipeline.cancel_message_batches(self.settings_path, self.batch, context)
        return self._wait_or_collect(context)

    def _wait_or_collect(self, context: Any) -> dict[str, Any]:
        """Defer on the next open batch; when none is open, collect every ended one."""
        from airflow.providers.anthropic.triggers.batch import AnthropicBatchTrigger

        wait = batch_pipeline.next_wait(self.settings_path, self.batch, context)
        if wait is not None and wait.end_time <= time.time():
            batch_pipeline.cancel_message_batches(self.settings_path, self.batch, context)
            wait = batch_pipeline.next_wait(self.settings_path, self.batch, context)
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
        return batch_pipeline.collect_message_batches(self.settings_path, self.batch, context)

    def _label(self, context: Any) -> None:
        context["batch_label"] = f"batch {self.batch['batch_index']} ({self.batch['size']} responses)"
