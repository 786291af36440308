"""Turn Airflow connections into what the library needs: the warehouse, as a URL or an engine.

The warehouse connection ``judge_warehouse`` may be ``sqlite`` (host = the file path), ``postgres``,
or of any type in :data:`PROVIDERS`: ``duckdb``, ``mysql``, ``snowflake``, ``google_cloud_platform``
(BigQuery), ``databricks`` or ``redshift``. For each of these the engine comes from the Airflow provider's own hook, so
its authentication (IAM, key pairs, service accounts, OAuth) is the provider's; each provider is an
optional extra of judgeflow, and a missing one is a :class:`ConfigError` naming the extra to install.
An ``extra`` of ``{"sqlalchemy_url": ...}`` overrides all of this; ``{"engine_kwargs": {...}}`` is
handed to the hook's ``get_sqlalchemy_engine`` (``connect_args``, pool sizes). With no such
connection the embedded SQLite file from the settings serves.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from judgeflow.errors import ConfigError

log = logging.getLogger(__name__)


class Provider(NamedTuple):
    """Where a connection type's hook lives, the keyword that names its connection, and judgeflow's extra."""

    module: str
    hook: str
    conn_kwarg: str
    extra: str


PROVIDERS: dict[str, Provider] = {
    "mysql": Provider("airflow.providers.mysql.hooks.mysql", "MySqlHook", "mysql_conn_id", "mysql"),
    "snowflake": Provider(
        "airflow.providers.snowflake.hooks.snowflake", "SnowflakeHook", "snowflake_conn_id", "snowflake"
    ),
    "google_cloud_platform": Provider(
        "airflow.providers.google.cloud.hooks.bigquery", "BigQueryHook", "gcp_conn_id", "bigquery"
    ),
    "databricks": Provider(
        "airflow.providers.databricks.hooks.databricks_sql", "DatabricksSqlHook", "databricks_conn_id", "databricks"
    ),
    "redshift": Provider(
        "airflow.providers.amazon.aws.hooks.redshift_sql", "RedshiftSQLHook", "redshift_conn_id", "redshift"
    ),
    "duckdb": Provider("airflow.providers.duckdb.hooks.duckdb", "DuckDBHook", "duckdb_conn_id", "duckdb"),
}


def warehouse_target(conn_id: str, *, embedded_path: str, lookup: Callable[[str], Any | None] | None = None) -> Any:
    """The warehouse: a SQLAlchemy URL (``str``) judgeflow connects to itself, or an ``Engine`` a
    provider's hook built. ``lookup`` as in :func:`warehouse_url`."""
    conn = (lookup or _task_connection)(conn_id)
    if conn is None or conn.extra_dejson.get("sqlalchemy_url"):
        return warehouse_url(conn_id, embedded_path=embedded_path, lookup=lambda _id: conn)
    kind = (conn.conn_type or "").lower()
    if kind not in PROVIDERS:
        return warehouse_url(conn_id, embedded_path=embedded_path, lookup=lambda _id: conn)
    return provider_engine(conn_id, conn)


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
        f"connection {conn_id!r}: type {kind!r} has no URL of its own; use one of "
        f'{", ".join(["sqlite", "postgres", *PROVIDERS])}, or give extra {{"sqlalchemy_url": "..."}}'
    )


def provider_engine(conn_id: str, conn: Any) -> Any:
    """The SQLAlchemy engine the connection type's provider hook builds (its auth, its URL)."""
    kind = (conn.conn_type or "").lower()
    provider = PROVIDERS[kind]
    install = f"pip install 'judgeflow[{provider.extra}]'"
    try:
        hook_class = getattr(importlib.import_module(provider.module), provider.hook)
    except ImportError as exc:
        raise ConfigError(
            f"connection {conn_id!r} is a {kind} connection, and its provider is not installed: "
            f"install the judgeflow[{provider.extra}] extra ({install}; missing: {exc.name or exc})"
        ) from exc
    hook = hook_class(**{provider.conn_kwarg: conn_id}, connection=conn)
    engine_kwargs = dict(conn.extra_dejson.get("engine_kwargs") or {})
    from sqlalchemy.exc import NoSuchModuleError

    try:
        return hook.get_sqlalchemy_engine(engine_kwargs=engine_kwargs)
    except (ImportError, NoSuchModuleError) as exc:  # the provider is there, its SQLAlchemy dialect is not
        raise ConfigError(
            f"connection {conn_id!r}: the {kind} provider found no SQLAlchemy dialect ({exc}); "
            f"install the judgeflow[{provider.extra}] extra ({install})"
        ) from exc


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
