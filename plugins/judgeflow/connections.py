"""Turn Airflow connections into what the library needs: a warehouse URL.

The warehouse connection ``judge_warehouse`` may be ``sqlite`` (host = the file path) or
``postgres`` (the URL is the Postgres provider's ``PostgresHook.sqlalchemy_url``: its driver, IAM
and ``sqlalchemy_query`` extras); an ``extra`` of ``{"sqlalchemy_url": ...}`` overrides both.
With no such connection the embedded SQLite file from the settings serves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from judgeflow.errors import ConfigError

log = logging.getLogger(__name__)


def warehouse_url(conn_id: str, *, embedded_path: str, lookup: Callable[[str], Any | None] | None = None) -> str:
    """The SQLAlchemy URL of the warehouse, from connection ``conn_id`` or the embedded default.

    ``lookup`` finds a connection or returns ``None``; by default the Task SDK's, which is right in
    tasks. Outside a task (the api-server) pass :func:`server_connection`: the SDK sees only
    environment and secrets-backend connections there, not the ones stored in Airflow's database."""
    conn = (lookup or _task_connection)(conn_id)
    if conn is None:
        Path(embedded_path).parent.mkdir(parents=True, exist_ok=True)
        log.info("no %r connection: using the embedded SQLite warehouse at %s", conn_id, embedded_path)
        return f"sqlite:///{embedded_path}"
    explicit = conn.extra_dejson.get("sqlalchemy_url")
    if explicit:
        return str(explicit)
    kind = (conn.conn_type or "").lower()
    if kind == "sqlite":
        if not conn.host:
            raise ConfigError(f"connection {conn_id!r}: a sqlite connection needs host = the file path")
        return f"sqlite:///{conn.host}"
    if kind in ("postgres", "postgresql"):
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        url = PostgresHook(postgres_conn_id=conn_id, connection=conn).sqlalchemy_url  # the provider's own URL
        return url.render_as_string(hide_password=False)
    raise ConfigError(
        f"connection {conn_id!r}: type {kind!r} is not supported; use sqlite or postgres, "
        'or give extra {"sqlalchemy_url": "..."}'
    )


def _task_connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def server_connection(conn_id: str) -> Any | None:
    """A connection as Airflow's server processes see it: secrets backends, environment, then the metadata DB."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection  # the server-side model: it reads the metadata DB

    try:
        return Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None
