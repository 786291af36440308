"""``judge_message_batches``: the Message Batches a score task submitted, recorded before it waits.

A retried or restarted task finds its batches here and re-attaches instead of paying twice;
collected ones are marked so their results are not written twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, Table, select

from judgeflow.records import BatchRef
from judgeflow.storage.engine import as_utc, errors_as, upsert


class MessageBatchStore:
    """Reads and writes ``judge_message_batches`` over the warehouse's engine."""

    def __init__(self, engine: Engine, table: Table) -> None:
        self.engine = engine
        self.table = table

    def record(
        self, *, ref: BatchRef, part: int, anthropic_batch_id: str, requests: int, created_at: dt.datetime
    ) -> None:
        """Remember a submitted Message Batch before waiting for it (idempotent per task and part)."""
        row = {
            "run_key": ref.batches_key,
            "batch_index": ref.batch_index,
            "part": part,
            "anthropic_batch_id": anthropic_batch_id,
            "requests": requests,
            "status": "submitted",
            "created_at": created_at,
        }
        with errors_as("record message batch"), self.engine.begin() as conn:
            upsert(conn, self.table, [row])

    def for_task(self, ref: BatchRef) -> list[dict[str, Any]]:
        """The Message Batches this score task submitted, in part order."""
        table = self.table
        query = (
            select(table)
            .where(table.c.run_key == ref.batches_key, table.c.batch_index == ref.batch_index)
            .order_by(table.c.part)
        )
        with errors_as("read message batches"), self.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        return [{**row, "created_at": as_utc(row["created_at"])} for row in rows]

    def set_status(self, anthropic_batch_id: str, status: str) -> None:
        table = self.table
        with errors_as("update message batch"), self.engine.begin() as conn:
            conn.execute(table.update().where(table.c.anthropic_batch_id == anthropic_batch_id).values(status=status))
