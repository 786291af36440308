"""The verdict cache: Redis when the ``judge_cache`` connection exists, else an embedded SQLite file.

Why a cache at all: re-running a day, rescoring after a crash, or a response the app served twice
would otherwise pay the judge again for a verdict it already gave. The key (:func:`cache_key`) holds
exactly what can change the judge's output (rubric version, model and the judged texts) and nothing
that cannot (run id, time, response id), so identical work is found whichever run asks.

The contract every backend keeps, because a cache is an optimisation and must never fail a run:

* ``get_many`` returns only hits; ``put_many`` is a best-effort write. Neither raises.
* The first backend error is logged once as a warning with its reason, then the cache disables
  itself for the rest of the task, so a dead Redis costs one timeout, not one per batch.
* A stored value that does not decode is a miss (logged at debug), never an error.

Imports of ``redis`` and Airflow stay inside the functions that need them, so importing the engine
stays cheap.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast, runtime_checkable

from judgeflow.records import Verdict
from judgeflow.sqlite_wal import switch_to_wal

if TYPE_CHECKING:
    import redis

    from judgeflow.config import CacheConfig

log = logging.getLogger(__name__)

KEY_PREFIX = "judgeflow:v1:"
"""Bump the version when the key's encoding or the stored value's shape changes: old entries then
simply stop matching instead of being misread."""

REDIS_CHUNK = 1_000
SQLITE_CHUNK = 500

_T = TypeVar("_T")


def cache_key(
    *,
    rubric_version_key: str,
    model: str,
    question: str | None,
    context: str | None,
    response: str | None,
) -> str:
    """The cache key for one judgement: ``judgeflow:v1:`` + sha256 of a canonical encoding.

    The fields are encoded as a JSON list, so field boundaries are unambiguous (``("a", "bc")`` and
    ``("ab", "c")`` differ) and ``None`` stays distinct from ``""``. ASCII-escaped JSON makes the
    bytes deterministic for any text, lone surrogates included. Anything that cannot change the
    judge's output is deliberately not a parameter.
    """
    canonical = json.dumps(
        [rubric_version_key, model, question, context, response],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return KEY_PREFIX + sha256(canonical.encode("ascii")).hexdigest()


@runtime_checkable
class VerdictCache(Protocol):
    """What the engine needs from a cache. Implementations never raise from these methods."""

    def get_many(self, keys: Sequence[str]) -> dict[str, Verdict]:
        """The cached verdicts for ``keys``: hits only, a miss is simply absent."""
        ...

    def put_many(self, items: Mapping[str, Verdict]) -> None:
        """Store verdicts by key, best effort; overwriting an existing key is fine."""
        ...

    def describe(self) -> str:
        """One line for the task log: which backend, where, and whether it is still on."""
        ...

    def close(self) -> None:
        """Release connections; safe to call twice."""
        ...


def _encode_verdict(verdict: Verdict) -> str:
    """The stored form of a verdict, shared by every backend."""
    return json.dumps(verdict.to_json(), separators=(",", ":"))


def _decode_verdict(key: str, raw: str | bytes) -> Verdict | None:
    """The verdict stored under ``key``, or ``None`` when the value is corrupt or of an old shape."""
    try:
        return Verdict.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.debug("Verdict cache: value under %s does not decode (%s); treated as a miss", key, exc)
        return None


def _chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _FailSafeCache(ABC):
    """The never-raise, disable-after-first-failure behaviour, shared by the real backends.

    Subclasses implement ``_read``/``_write``/``_close``/``_where`` and may raise anything; this
    class turns the first failure into one warning and every later call into a cheap no-op.
    """

    def __init__(self) -> None:
        self._disabled_reason: str | None = None
        self._disable_lock = threading.Lock()

    @property
    def disabled(self) -> bool:
        """Whether a backend error has switched the cache off for the rest of the task."""
        return self._disabled_reason is not None

    def get_many(self, keys: Sequence[str]) -> dict[str, Verdict]:
        if self._disabled_reason is not None or not keys:
            return {}
        try:
            return self._read(list(keys))
        except Exception as exc:  # the contract: a cache never fails the run
            self._disable(f"reading {len(keys)} keys", exc)
            return {}

    def put_many(self, items: Mapping[str, Verdict]) -> None:
        if self._disabled_reason is not None or not items:
            return
        try:
            self._write([(key, _encode_verdict(verdict)) for key, verdict in items.items()])
        except Exception as exc:  # the contract: a cache never fails the run
            self._disable(f"writing {len(items)} verdicts", exc)

    def describe(self) -> str:
        if self._disabled_reason is not None:
            return f"{self._where()} (disabled for this task after an error: {self._disabled_reason})"
        return self._where()

    def close(self) -> None:
        try:
            self._close()
        except Exception as exc:  # closing a broken backend is not worth a failure either
            log.debug("Verdict cache: closing %s failed (%s)", self._where(), _reason(exc))

    def _disable(self, action: str, exc: BaseException) -> None:
        with self._disable_lock:
            if self._disabled_reason is not None:
                return
            self._disabled_reason = _reason(exc)
        log.warning(
            "Verdict cache: %s failed while %s (%s); the cache is disabled for the rest of this task "
            "and scoring goes on uncached",
            self._where(),
            action,
            self._disabled_reason,
        )

    @abstractmethod
    def _read(self, keys: list[str]) -> dict[str, Verdict]: ...

    @abstractmethod
    def _write(self, rows: list[tuple[str, str]]) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _where(self) -> str: ...


def _check_ttl(ttl_seconds: int) -> int:
    # A programming error, not a backend one: fail loudly rather than silently caching nothing.
    if ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be at least 1, got {ttl_seconds}")
    return int(ttl_seconds)


class RedisVerdictCache(_FailSafeCache):
    """Verdicts in Redis as JSON strings with a TTL; shared by every worker.

    Round trips are what cost here, so reads are one ``MGET`` and writes one non-transactional
    pipeline of ``SET key value EX ttl`` per chunk of :data:`REDIS_CHUNK` keys, never one per item.
    The client's timeouts and retries are the caller's choice (see :func:`open_cache`).
    """

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        super().__init__()
        self._client = client
        self._ttl = _check_ttl(ttl_seconds)

    def _read(self, keys: list[str]) -> dict[str, Verdict]:
        hits: dict[str, Verdict] = {}
        for chunk in _chunks(keys, REDIS_CHUNK):
            # redis-py 6 (which Celery's kombu pins) types mget as possibly awaitable; this client is sync.
            values = cast("list[Any]", self._client.mget(chunk))
            for key, raw in zip(chunk, values, strict=True):
                if raw is not None and (verdict := _decode_verdict(key, raw)) is not None:
                    hits[key] = verdict
        return hits

    def _write(self, rows: list[tuple[str, str]]) -> None:
        for chunk in _chunks(rows, REDIS_CHUNK):
            pipe = self._client.pipeline(transaction=False)
            for key, value in chunk:
                pipe.set(key, value, ex=self._ttl)
            pipe.execute()

    def _close(self) -> None:
        self._client.close()

    def _where(self) -> str:
        from judgeflow.judging.redis_client import address

        return f"Redis verdict cache at {address(self._client)} (ttl {self._ttl} s)"


class EmbeddedVerdictCache(_FailSafeCache):
    """Verdicts in a local SQLite file, for when no Redis is configured (laptops, CI, small installs).

    WAL mode and a 30 s busy timeout let several task processes share the file. Expired rows read as
    misses and are pruned when the cache opens, so the file does not grow forever. ``clock`` returns
    Unix seconds and exists for tests.
    """

    def __init__(
        self,
        path: str | Path,
        ttl_seconds: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._path = Path(path)
        self._ttl = _check_ttl(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = self._open()
        except Exception as exc:  # an unwritable path must not fail the run either
            self._disable("opening the file", exc)

    def _open(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        try:
            switch_to_wal(conn)
            with conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS verdicts "
                    "(key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL)"
                )
                conn.execute("CREATE INDEX IF NOT EXISTS verdicts_expires_at ON verdicts (expires_at)")
                conn.execute("DELETE FROM verdicts WHERE expires_at <= ?", (self._clock(),))
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the cache file is closed")
        return self._conn

    def _read(self, keys: list[str]) -> dict[str, Verdict]:
        now = self._clock()
        hits: dict[str, Verdict] = {}
        with self._lock:
            conn = self._connection()
            for chunk in _chunks(keys, SQLITE_CHUNK):
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, value FROM verdicts WHERE key IN ({marks}) AND expires_at > ?",
                    (*chunk, now),
                ).fetchall()
                for key, raw in rows:
                    if (verdict := _decode_verdict(key, raw)) is not None:
                        hits[key] = verdict
        return hits

    def _write(self, rows: list[tuple[str, str]]) -> None:
        expires_at = self._clock() + self._ttl
        with self._lock:
            conn = self._connection()
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO verdicts (key, value, expires_at) VALUES (?, ?, ?)",
                    [(key, value, expires_at) for key, value in rows],
                )

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _where(self) -> str:
        return f"embedded SQLite verdict cache at {self._path} (ttl {self._ttl} s)"


class NullVerdictCache:
    """No cache: every lookup misses and writes are dropped. ``reason`` says why, for the log."""

    def __init__(self, reason: str = "caching is disabled") -> None:
        self.reason = reason

    def get_many(self, keys: Sequence[str]) -> dict[str, Verdict]:
        return {}

    def put_many(self, items: Mapping[str, Verdict]) -> None:
        return None

    def describe(self) -> str:
        return f"no verdict cache ({self.reason})"

    def close(self) -> None:
        return None


def open_cache(settings_cache: CacheConfig, *, redis_conn_id: str) -> VerdictCache:
    """The cache a score task should use; never raises.

    Disabled in the settings → :class:`NullVerdictCache`. An Airflow connection ``redis_conn_id``
    exists → Redis (:mod:`judgeflow.judging.redis_client`: its database, 2 s timeouts, no client
    retries), pinged once; unusable or unreachable → a warning and :class:`NullVerdictCache`
    (scoring goes on uncached). No such connection → :class:`EmbeddedVerdictCache` at
    ``settings_cache.embedded_path``.
    """
    from judgeflow.judging.redis_client import redis_target, sync_client

    cache: VerdictCache
    if not settings_cache.enabled:
        cache = NullVerdictCache("disabled in the settings: cache.enabled is false")
    else:
        try:
            target = redis_target(redis_conn_id)
        except Exception as exc:
            problem = f"connection {redis_conn_id!r} could not be used ({_reason(exc)})"
            log.warning("Verdict cache: %s; scoring goes on uncached", problem)
            cache = NullVerdictCache(problem)
        else:
            if target is None:
                cache = EmbeddedVerdictCache(settings_cache.embedded_path, settings_cache.ttl_seconds)
            else:
                cache = _ping_or_null(sync_client(target), settings_cache.ttl_seconds)
    log.info("Verdict cache: %s", cache.describe())
    return cache


def _ping_or_null(client: redis.Redis, ttl_seconds: int) -> VerdictCache:
    from judgeflow.judging.redis_client import address

    try:
        client.ping()
    except Exception as exc:
        log.warning("Redis cache at %s unreachable (%s); scoring goes on uncached", address(client), _reason(exc))
        client.close()
        return NullVerdictCache(f"Redis at {address(client)} was unreachable: {_reason(exc)}")
    return RedisVerdictCache(client, ttl_seconds)


__all__ = [
    "EmbeddedVerdictCache",
    "NullVerdictCache",
    "RedisVerdictCache",
    "VerdictCache",
    "cache_key",
    "open_cache",
]
