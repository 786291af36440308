"""What every module that talks to the warehouse shares: its engine, one error type, one upsert, one timestamp rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from judgeflow.errors import WarehouseError
from judgeflow.sqlite_wal import switch_to_wal
from judgeflow.storage import dialects


def warehouse_engine(target: str | Engine) -> Engine:
    """The warehouse's engine, from a URL or from the engine a provider's hook built.

    SQLite waits up to 30 s for a lock and runs in WAL mode, so parallel score tasks (and a reader
    beside them) queue instead of failing; MySQL and DuckDB sessions are set to UTC."""
    if isinstance(target, Engine):
        return dialects.prepare_sessions(target)
    if not target.startswith("sqlite"):
        return dialects.prepare_sessions(create_engine(target))
    engine = create_engine(target, connect_args={"timeout": 30})
    event.listen(engine, "connect", lambda dbapi_connection, _record: switch_to_wal(dbapi_connection))
    return engine


@contextmanager
def errors_as(action: str) -> Iterator[None]:
    """Turn a database error into a :class:`WarehouseError` naming what was being done (the task retries)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise WarehouseError(f"warehouse: could not {action}: {exc}") from exc


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite and MySQL give timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, or update the row with the same primary key (:func:`judgeflow.storage.dialects.upsert`)."""
    dialects.upsert(conn, table, rows)
