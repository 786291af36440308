"""The connections ``judgeflow deploy init`` creates, built from its inputs, and what is wrong with ones that exist.

Pure functions over plain values, so every rule is a unit test:

- the judge (``anthropic_default``) points at the emulator only when the operator asked for it
  (``--emulator-url``), never because no API key was given; a connection init made for the
  emulator is marked in its description, so a later init that was not asked for the emulator
  refuses to go on with it (the trial's judge must not score for real);
- the cache (``judge_cache``) names its Redis database in ``extra.db``, the one place the
  provider's ``RedisHook`` reads it, and never the Celery broker's database;
- the warehouse (``judge_warehouse``) logs in as judgeflow's own role, never the server's superuser.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import URL

from judgeflow.errors import ConfigError

EMULATOR_MARK = "judgeflow deploy init: the local Messages API emulator, not the real judge (--emulator-url)"
"""The description of a judge connection init made for the emulator."""


@dataclass(frozen=True, kw_only=True)
class ConnSpec:
    """An Airflow connection to create: the fields of ``airflow.models.Connection``."""

    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def fields(self) -> dict[str, Any]:
        """Keyword arguments of ``airflow.models.Connection``."""
        return {
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "host": self.host,
            "port": self.port,
            "login": self.login,
            "password": self.password,
            "schema": self.schema,
            "extra": json.dumps(self.extra) if self.extra else None,
            "description": self.description or None,
        }

    def where(self) -> str:
        """Where it points, without secrets, for the report."""
        place = f"{self.host or ''}{f':{self.port}' if self.port else ''}"
        if self.schema:
            place += f"/{self.schema}"
        if "db" in self.extra:
            place += f" db {self.extra['db']}"
        return f"{self.conn_type} {place}".strip() + (f" as {self.login}" if self.login else "")


# --- the judge --------------------------------------------------------------------------------


def judge_spec(conn_id: str, *, api_key: str | None, emulator_url: str | None) -> ConnSpec:
    """The judge connection to create: the real API with ``api_key``, or the emulator when asked for."""
    if api_key and emulator_url:
        raise ConfigError(
            f"connection {conn_id!r}: both ANTHROPIC_API_KEY and --emulator-url are set; "
            "give the key for the real judge, or the emulator's URL for a trial, not both"
        )
    if emulator_url:
        return ConnSpec(
            conn_id=conn_id,
            conn_type="anthropic",
            host=emulator_url.rstrip("/"),
            password="emulator",
            description=EMULATOR_MARK,
        )
    if api_key:
        return ConnSpec(conn_id=conn_id, conn_type="anthropic", password=api_key)
    raise ConfigError(
        f"connection {conn_id!r} does not exist and ANTHROPIC_API_KEY is not set: put the key in .env "
        "(or the connection in your secrets backend), or ask for the local emulator on purpose with "
        "JUDGEFLOW_EMULATOR_URL (docker compose: --profile emulator)"
    )


def is_emulator_judge(conn: Any) -> bool:
    """True for a judge connection made for the emulator, by this init or by the compose file before it
    (host ``judge-emulator``, password ``emulator``)."""
    return (
        EMULATOR_MARK in (conn.description or "")
        or "judge-emulator" in (conn.host or "")
        or (conn.password or "") == "emulator"
    )


def judge_problem(conn_id: str, conn: Any, *, emulator_url: str | None) -> str | None:
    """Why an existing judge connection must not be used as it is, or None."""
    host = (conn.host or "").rstrip("/")
    if emulator_url is None and is_emulator_judge(conn):
        return (
            f"points at the emulator ({host or 'no host'}) but this init was not asked for it: scores "
            f"would be the emulator's. Delete it (airflow connections delete {conn_id}), put "
            "ANTHROPIC_API_KEY in .env and run init again"
        )
    if emulator_url is not None and host != emulator_url.rstrip("/"):
        return (
            f"the emulator at {emulator_url} was asked for, but {conn_id} points at "
            f"{host or 'the Anthropic API'}; an existing connection is never replaced: delete it first"
        )
    return None


# --- the cache ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisPlace:
    """A Redis server and database number."""

    host: str
    port: int
    db: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port} db {self.db}"


def redis_place(url: str, *, what: str) -> RedisPlace:
    """Host, port and database of a ``redis://`` or ``rediss://`` URL; the database must be in the path."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ConfigError(f"{what}: {url!r} is not a redis:// URL")
    path = parts.path.strip("/")
    if not path.isdigit():
        raise ConfigError(f"{what}: {url!r} names no database; give it in the path, e.g. redis://redis:6379/1")
    return RedisPlace(parts.hostname, parts.port or 6379, int(path))


def cache_spec(conn_id: str, url: str) -> ConnSpec:
    """The cache connection for ``url``, its database in ``extra.db`` (where ``RedisHook`` reads it)."""
    place = redis_place(url, what=f"connection {conn_id!r}")
    parts = urlsplit(url)
    extra: dict[str, Any] = {"db": place.db}
    if parts.scheme == "rediss":
        extra["ssl"] = True
    return ConnSpec(
        conn_id=conn_id,
        conn_type="redis",
        host=place.host,
        port=place.port,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        extra=extra,
    )


def broker_place(broker_url: str) -> RedisPlace | None:
    """Where the Celery broker keeps its queues, when it is Redis (database 0 when the URL names none)."""
    parts = urlsplit(broker_url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return None
    path = parts.path.strip("/")
    return RedisPlace(parts.hostname, parts.port or 6379, int(path) if path.isdigit() else 0)


def cache_problem(conn_id: str, cache: RedisPlace, broker: RedisPlace | None) -> str | None:
    """A cache on the broker's database is wiped by the broker's FLUSHDB, and fills its keyspace."""
    if broker is not None and cache == broker:
        return (
            f"{conn_id} uses {cache}, the Celery broker's database: a FLUSHDB of the broker would wipe "
            f"the verdict cache and the shared limits. Give it a database of its own in extra.db"
        )
    return None


# --- the warehouse ------------------------------------------------------------------------------


def warehouse_spec(conn_id: str, admin_url: URL, *, role: str, password: str) -> ConnSpec:
    """The warehouse connection: the admin URL's server and database, logged in as judgeflow's role."""
    return ConnSpec(
        conn_id=conn_id,
        conn_type="postgres",
        host=admin_url.host,
        port=admin_url.port or 5432,
        login=role,
        password=password,
        schema=admin_url.database,
    )


def slack_spec(conn_id: str, webhook_url: str) -> ConnSpec:
    """The on-call webhook: the provider's hook takes the whole URL from the password."""
    return ConnSpec(conn_id=conn_id, conn_type="slackwebhook", password=webhook_url)
