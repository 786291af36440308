"""What every module that talks to the warehouse shares: its engine, one error type, one upsert, one timestamp rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from judgeflow.errors import WarehouseError
from judgeflow.sqlite_wal import switch_to_wal


def warehouse_engine(url: str) -> Engine:
    """The warehouse's engine. SQLite waits up to 30 s for a lock and runs in WAL mode, so parallel
    score tasks (and a reader beside them) queue instead of failing."""
    if not url.startswith("sqlite"):
        return create_engine(url)
    engine = create_engine(url, connect_args={"timeout": 30})
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
    """SQLite gives timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, or update the row with the same primary key: one executemany statement."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    keys = [c.name for c in table.primary_key.columns]
    stmt = dialect.insert(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)
