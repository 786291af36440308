"""The one way judgeflow reaches Redis: the verdict cache, the shared rate limiter and the budget.

The connection (``judge_cache`` by default) is found through ``RedisHook``, the provider's hook,
and read the way the hook reads it (host, port, login, password, the SSL extras), with one
difference: the database. ``RedisHook`` takes it only from ``extra.db`` and ignores a URI's path, so
``AIRFLOW_CONN_JUDGE_CACHE=redis://host:6379/7`` would land in database 0, which may be the Celery
broker's or another environment's. Here the database is ``extra.db`` when given, else the URI
path, else 0; both name the same thing, and a value that is not a whole number is a
:class:`ConfigError` naming the connection.

Clients fail fast (2 s connect and read timeouts, no client retries): a dead Redis costs one
timeout, and every caller falls back (uncached, or limits kept in-process) and says so in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from judgeflow.errors import ConfigError

if TYPE_CHECKING:
    import redis
    import redis.asyncio

log = logging.getLogger(__name__)

TIMEOUT_S = 2.0
"""Connect and read timeout of every client built here."""
SSL_EXTRAS = ("ssl", "ssl_cert_reqs", "ssl_ca_certs", "ssl_keyfile", "ssl_certfile", "ssl_check_hostname")
"""The connection extras passed to the client, as ``RedisHook`` passes them."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where a Redis connection points: everything a client needs, read once from the connection."""

    conn_id: str
    host: str
    port: int
    db: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_connection(cls, conn_id: str, conn: Any) -> RedisTarget:
        extra = conn.extra_dejson
        if extra.get("cluster"):
            raise ConfigError(f"connection {conn_id!r} is a Redis cluster, which judgeflow does not support")
        password = None if str(conn.password).lower() in ("none", "false", "") else conn.password
        return cls(
            conn_id=conn_id,
            host=conn.host or "localhost",
            port=int(conn.port or 6379),
            db=_database(conn_id, extra.get("db"), conn.schema),
            username=conn.login or None,
            password=password,
            ssl={name: value for name, value in extra.items() if name in SSL_EXTRAS},
        )

    def describe(self) -> str:
        return f"{self.host}:{self.port} db {self.db} (connection {self.conn_id!r})"

    def client_kwargs(self) -> dict[str, Any]:
        """The same keyword arguments for the sync and the asyncio client."""
        where = {name: getattr(self, name) for name in ("host", "port", "db", "username", "password")}
        return {**where, "socket_connect_timeout": TIMEOUT_S, "socket_timeout": TIMEOUT_S, **self.ssl}


def _database(conn_id: str, extra_db: Any, path: str | None) -> int:
    """``extra.db``, else the URI path (``redis://host:6379/7`` keeps ``7`` as the connection's schema)."""
    for source, value in (("extra.db", extra_db), ("the URI path", path)):
        if value is None or value == "":
            continue
        text = str(value).strip().strip("/")
        if not text.isdigit():
            raise ConfigError(f"connection {conn_id!r}: {source} must be a database number, not {value!r}")
        return int(text)
    return 0


def redis_target(conn_id: str) -> RedisTarget | None:
    """The connection's target, found as ``RedisHook`` finds it; ``None`` when it does not exist."""
    from airflow.exceptions import AirflowNotFoundException  # the same class as airflow.sdk.exceptions'
    from airflow.providers.redis.hooks.redis import RedisHook

    try:
        conn = RedisHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return RedisTarget.from_connection(conn_id, conn)


async def aredis_target(conn_id: str) -> RedisTarget | None:
    """:func:`redis_target` from async code (the rate limiter and budget open inside the event loop)."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.providers.redis.hooks.redis import RedisHook

    try:
        conn = await RedisHook.aget_connection(conn_id)
    except AirflowNotFoundException:
        return None
    return RedisTarget.from_connection(conn_id, conn)


def sync_client(target: RedisTarget) -> redis.Redis:
    """A (not yet connected) client for the verdict cache: short timeouts, no retries."""
    import redis as redis_lib
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis_lib.Redis(retry=Retry(NoBackoff(), 0), **target.client_kwargs())


def async_client(target: RedisTarget) -> redis.asyncio.Redis:
    """A (not yet connected) asyncio client for the shared limits: short timeouts, no retries."""
    import redis.asyncio as aredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return aredis.Redis(retry=Retry(NoBackoff(), 0), **target.client_kwargs())


async def open_async_redis(conn_id: str) -> redis.asyncio.Redis | None:
    """An asyncio client for connection ``conn_id`` that answered a PING, or ``None``; never raises.

    ``None`` is logged with its reason: no such connection (info), or an unusable connection or
    unreachable server (warning: what is shared through Redis then falls back to this process)."""
    try:
        target = await aredis_target(conn_id)
    except Exception as exc:
        log.warning(
            "Redis: connection %r could not be used (%s); shared limits fall back to this process", conn_id, exc
        )
        return None
    if target is None:
        log.info("Redis: no Airflow connection %r, so shared limits are kept in this process", conn_id)
        return None
    client = async_client(target)
    try:
        await client.ping()
    except Exception as exc:
        log.warning(
            "Redis at %s unreachable (%s: %s); what is shared through it falls back to this process, "
            "so each task applies its limits on its own",
            target.describe(),
            type(exc).__name__,
            exc,
        )
        await close_quietly(client)
        return None
    return client


async def close_quietly(client: redis.asyncio.Redis) -> None:
    try:
        await client.aclose()
    except Exception as exc:  # nothing more to do for a client that never worked
        log.debug("Redis: closing a client failed (%s)", exc)


def address(client: Any) -> str:
    """``host:port db N`` of a client, for logs."""
    kwargs = client.get_connection_kwargs()
    where = f"unix:{kwargs['path']}" if kwargs.get("path") else f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"{where} db {kwargs.get('db') or 0}"
