"""What differs between the warehouses judgeflow runs on, in one place.

Every other module of :mod:`judgeflow.storage` writes SQLAlchemy Core once; the few things no
construct renders the same everywhere are decided here by the dialect's name:

- **upserts**: ``ON CONFLICT`` on PostgreSQL, SQLite and DuckDB; ``ON DUPLICATE KEY`` on MySQL and
  MariaDB; ``MERGE`` on Snowflake, BigQuery, Databricks and Redshift (:class:`Merge`);
- **integer division** (batch numbers): ``/`` is exact on PostgreSQL, SQLite and Redshift, ``DIV`` on
  MySQL, and a float elsewhere, so there it is ``CAST(FLOOR(...) AS INTEGER)``;
- **the UTC day of a timestamp**, **the length of a text in characters**, whether the warehouse has
  indexes or autoincrement keys;
- **types**: JSON where the dialect has none is text; long texts fit MySQL's ``TEXT`` and Redshift's
  ``VARCHAR(65535)``; floats are double precision on MySQL; timestamps keep microseconds on MySQL;
- **the session**: MySQL and DuckDB sessions are set to UTC, so ``TIMESTAMP`` columns and calendar
  days read as judgeflow writes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    Table,
    Text,
    cast,
    event,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeDecorator, TypeEngine

ON_CONFLICT = frozenset({"postgresql", "sqlite", "duckdb"})
ON_DUPLICATE_KEY = frozenset({"mysql", "mariadb"})
MERGE = frozenset({"snowflake", "bigquery", "databricks", "redshift"})
SUPPORTED = ON_CONFLICT | ON_DUPLICATE_KEY | MERGE
# Warehouses without secondary indexes (Snowflake, BigQuery, Databricks: micro-partitions and
# clustering; Redshift: sort keys): judgeflow's indexes are created only where they exist.
HAS_INDEXES = frozenset({"postgresql", "sqlite", "duckdb", "mysql", "mariadb"})
# No SERIAL/IDENTITY that SQLAlchemy can use: judgeflow numbers the (rare) calibration rows itself.
NO_AUTOINCREMENT = frozenset({"duckdb", "bigquery"})

TEXT_LIMIT = 16_000  # characters judgeflow keeps of a rationale, reason or raw reply: 4 bytes each fit 64 KB
MERGE_ROWS = 200  # rows per MERGE statement: BigQuery allows 10,000 parameters, Snowflake 16 MB of text


def check_supported(dialect_name: str) -> None:
    """Raise ``ValueError`` naming the supported dialects when this one is not among them."""
    if dialect_name not in SUPPORTED:
        raise ValueError(f"dialect {dialect_name!r} unsupported ({', '.join(sorted(SUPPORTED))})")


# --- types ------------------------------------------------------------------------------------------


class JsonText(TypeDecorator[Any]):
    """JSON kept as text, for warehouses whose SQLAlchemy dialect has no JSON type."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, default=str)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if isinstance(value, str) else value


def json_type() -> TypeEngine[Any]:
    """JSON on PostgreSQL, SQLite, DuckDB, MySQL; text holding JSON elsewhere."""
    return JSON().with_variant(JsonText(), *MERGE)


def long_text() -> TypeEngine[Any]:
    """``TEXT``; ``VARCHAR(65535)`` on Redshift, whose ``TEXT`` is ``VARCHAR(256)``."""
    from sqlalchemy import VARCHAR

    return Text().with_variant(VARCHAR(65535), "redshift")


def double() -> TypeEngine[Any]:
    """A double-precision float (``FLOAT`` on MySQL is single precision: costs would lose digits)."""
    return Float().with_variant(mysql.DOUBLE(), "mysql", "mariadb")


def timestamp() -> TypeEngine[Any]:
    """A timestamp with time zone; MySQL's ``DATETIME`` drops microseconds unless told to keep them."""
    return DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def clip(text: str | None) -> str | None:
    """At most :data:`TEXT_LIMIT` characters, so a long reply fits every warehouse's text column."""
    return text if text is None or len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


# --- expressions ------------------------------------------------------------------------------------


def floor_div(expr: Any, size: int, dialect_name: str) -> Any:
    """``floor(expr / size)`` as an integer, for a non-negative integer ``expr``."""
    if dialect_name in ("postgresql", "sqlite", "redshift", "mysql", "mariadb"):
        return expr // size  # integer division (DIV on MySQL)
    return cast(func.floor(expr / literal(size)), Integer)


def text_length(expr: Any, dialect_name: str) -> Any:
    """Characters, not bytes (MySQL's ``LENGTH`` counts bytes)."""
    return func.char_length(expr) if dialect_name in ON_DUPLICATE_KEY else func.length(expr)


def utc_day(column: Any, dialect_name: str) -> Any:
    """The UTC calendar day of a timestamp column, in SQL, whatever the session's time zone.

    A column without a zone holds UTC by judgeflow's convention. MySQL and DuckDB sessions are UTC
    (:func:`prepare_sessions`); BigQuery's ``DATE(timestamp)`` is UTC; Databricks uses the session
    time zone, UTC unless the warehouse was configured otherwise."""
    aware = bool(getattr(column.type, "timezone", False))
    if dialect_name in ("sqlite", "mysql", "mariadb", "bigquery"):
        return func.date(column)
    if aware and dialect_name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    if aware and dialect_name in ("snowflake", "redshift"):
        return cast(func.convert_timezone("UTC", column), Date)
    return cast(column, Date)


# --- sessions ---------------------------------------------------------------------------------------


_SESSION_SQL = {
    "mysql": "SET time_zone = '+00:00'",
    "mariadb": "SET time_zone = '+00:00'",
    "duckdb": "SET TimeZone = 'UTC'",
}


def prepare_sessions(engine: Engine) -> Engine:
    """Every new connection of ``engine`` reads and writes timestamps in UTC where the session decides."""
    statement = _SESSION_SQL.get(engine.dialect.name)
    if statement is not None:

        def _utc(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(statement)
            finally:
                cursor.close()

        event.listen(engine, "connect", _utc)
    return engine


# --- upserts ----------------------------------------------------------------------------------------


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows``, or update the row with the same primary key, in the dialect's own statement.

    Rows with the same key are reduced to the last one first: PostgreSQL refuses to update a row twice
    in one statement and Snowflake's MERGE calls it nondeterministic."""
    keys = [c.name for c in table.primary_key.columns]
    unique = list({tuple(row[k] for k in keys): row for row in rows}.values())
    if not unique:
        return
    name = conn.dialect.name
    if name in ON_CONFLICT:
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = (sqlite if name == "sqlite" else postgresql).insert(table)
        updates = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
        conn.execute(insert.on_conflict_do_update(index_elements=keys, set_=updates), unique)
    elif name in ON_DUPLICATE_KEY:
        stmt = mysql.insert(table)
        conn.execute(
            stmt.on_duplicate_key_update({c.name: stmt.inserted[c.name] for c in table.columns if c.name not in keys}),
            unique,
        )
    else:
        for start in range(0, len(unique), MERGE_ROWS):
            conn.execute(Merge(table, unique[start : start + MERGE_ROWS]))


class Merge(Executable, ClauseElement):
    """``MERGE INTO table USING (SELECT ... UNION ALL SELECT ...) ON <primary key> ...``: one upsert of
    many rows on the warehouses that have ``MERGE`` and no ``ON CONFLICT``. Values are bound parameters."""

    inherit_cache = False

    def __init__(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        self.table = table
        self.rows = rows
        self.columns = [c for c in table.columns if c.name in rows[0]]


@compiles(Merge)
def _compile_merge(element: Merge, compiler: Any, **kw: Any) -> str:
    table, columns = element.table, element.columns
    source = union_all(
        *[select(*[literal(row.get(c.name), type_=c.type).label(c.name) for c in columns]) for row in element.rows]
    )
    quote = compiler.preparer.quote
    keys = [c.name for c in table.primary_key.columns]
    others = [c.name for c in columns if c.name not in keys]
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
    names = ", ".join(quote(c.name) for c in columns)
    values = ", ".join(f"s.{quote(c.name)}" for c in columns)
    matched = ""
    if others:
        matched = " WHEN MATCHED THEN UPDATE SET " + ", ".join(f"{quote(n)} = s.{quote(n)}" for n in others)
    return (
        f"MERGE INTO {compiler.preparer.format_table(table)} AS t "
        f"USING ({compiler.process(source, **kw)}) AS s ON {on}{matched} "
        f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    )


__all__ = [
    "HAS_INDEXES",
    "MERGE",
    "NO_AUTOINCREMENT",
    "ON_CONFLICT",
    "ON_DUPLICATE_KEY",
    "SUPPORTED",
    "TEXT_LIMIT",
    "JsonText",
    "Merge",
    "check_supported",
    "clip",
    "double",
    "floor_div",
    "json_type",
    "long_text",
    "prepare_sessions",
    "text_length",
    "timestamp",
    "upsert",
    "utc_day",
]
