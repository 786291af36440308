"""What every module that talks to the warehouse shares: its engine, one error type, one upsert, one timestamp rule."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from judgeflow.errors import ConfigError, WarehouseError
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
    """Turn a database error into a :class:`WarehouseError` naming what was being done (the task retries);
    a missing grant into a :class:`ConfigError` naming the grant (retrying will not grant it)."""
    try:
        yield
    except SQLAlchemyError as exc:
        grant = missing_grant(exc)
        if grant is not None:
            raise ConfigError(f"warehouse: could not {action}: the role lacks a grant: {grant} ({exc})") from exc
        raise WarehouseError(f"warehouse: could not {action}: {exc}") from exc


_DENIED = [  # (how each warehouse words it, the table named in the message)
    re.compile(r"permission denied for (?:table|relation) (?P<table>[\w.\"]+)", re.IGNORECASE),  # PostgreSQL, Redshift
    re.compile(r"command denied to user .* for table [`']?(?P<table>[\w.]+)", re.IGNORECASE),  # MySQL, MariaDB
    re.compile(r"(?:insufficient privileges|not authorized)[^']*'?(?P<table>[\w.]*)", re.IGNORECASE),  # Snowflake
]


def missing_grant(exc: BaseException) -> str | None:
    """The grant a permission error asks for, as the ``GRANT`` to run, or ``None`` for other errors.

    judgeflow's own tables (``judge_*``) need DML; ``judgeflow_alembic_version`` (read by the revision
    check) and the source table need SELECT only."""
    text = str(getattr(exc, "orig", None) or exc)
    for pattern in _DENIED:
        match = pattern.search(text)
        if match:
            table = match.group("table").strip('"`') or "the table named above"
            name = table.split(".")[-1]
            own = name.startswith("judge_") and name != "judgeflow_alembic_version"  # the version: read only
            privileges = "SELECT, INSERT, UPDATE, DELETE" if own else "SELECT"
            return f"GRANT {privileges} ON {table} TO <the judge_warehouse role>"
    return None


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite and MySQL give timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, or update the row with the same primary key (:func:`judgeflow.storage.dialects.upsert`)."""
    dialects.upsert(conn, table, rows)
