"""What every module that talks to the warehouse shares: its engine, one error type, one timestamp rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
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
