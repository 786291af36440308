"""The Redis verdict cache against a real Redis at 127.0.0.1:6379, and against dead or silent ones.

Keys written here carry a random prefix and are deleted afterwards; nothing is flushed. Without a
reachable Redis these tests skip, unless ``JUDGEFLOW_REQUIRE_SERVICES=1`` makes that a failure.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from judgeflow.config import CacheConfig
from judgeflow.judging.redis_client import TIMEOUT_S
from judgeflow.judging.verdict_cache import (
    REDIS_CHUNK,
    NullVerdictCache,
    RedisVerdictCache,
    open_cache,
)
from judgeflow.records import CriterionScore, Verdict
from tests.conftest import service_missing

pytestmark = pytest.mark.redis

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
CONN_ID = "judge_cache"
CONN_ENV = "AIRFLOW_CONN_JUDGE_CACHE"


@pytest.fixture
def redis_available() -> None:
    """Check the shared Redis once per test; a conftest may absorb this later."""
    probe = redis.Redis(
        host=REDIS_HOST,
        port=REDIS_PORT,
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        probe.ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable ({exc})")
    finally:
        probe.close()


@pytest.fixture
def prefix(redis_available: None) -> Iterator[str]:
    """A key prefix no one else uses; every key under it is deleted after the test."""
    value = f"judgeflow:test:{uuid.uuid4().hex}:"
    yield value
    cleaner = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    keys = list(cleaner.scan_iter(match=value + "*", count=1000))
    for start in range(0, len(keys), 1000):
        cleaner.delete(*keys[start : start + 1000])
    cleaner.close()


class CountingConnection(redis.Connection):
    """Counts the times a command batch is written to the socket: one per round trip."""

    round_trips = 0

    def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
        type(self).round_trips += 1
        super().send_packed_command(*args, **kwargs)


@pytest.fixture
def counting_client(redis_available: None) -> Iterator[redis.Redis]:
    pool = redis.ConnectionPool(host=REDIS_HOST, port=REDIS_PORT, connection_class=CountingConnection)
    client = redis.Redis(connection_pool=pool)
    client.ping()  # the handshake is not what we count
    CountingConnection.round_trips = 0
    yield client
    client.close()
    pool.disconnect()


def verdict(n: int) -> Verdict:
    return Verdict(criteria={"accuracy": CriterionScore(score=n % 5 + 1, rationale=f"reason {n}")}, overall=n / 10)


def _calls(client: redis.Redis, command: str) -> int:
    stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def test_round_trip_2500_keys_with_ttl(prefix: str) -> None:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    cache = RedisVerdictCache(client, ttl_seconds=600)
    items = {f"{prefix}{i}": verdict(i) for i in range(2_500)}
    cache.put_many(items)

    assert cache.get_many([*items, f"{prefix}missing"]) == items
    pipe = client.pipeline(transaction=False)
    for key in items:
        pipe.ttl(key)
    ttls = pipe.execute()
    assert all(0 < ttl <= 600 for ttl in ttls)
    assert not cache.disabled
    cache.close()


def test_put_and_get_take_one_round_trip_per_chunk(prefix: str, counting_client: redis.Redis) -> None:
    cache = RedisVerdictCache(counting_client, ttl_seconds=600)
    items = {f"{prefix}{i}": verdict(i) for i in range(2_500)}
    expected_round_trips = -(-len(items) // REDIS_CHUNK)  # 3

    sets_before = _calls(counting_client, "set")
    CountingConnection.round_trips = 0
    cache.put_many(items)
    assert CountingConnection.round_trips == expected_round_trips
    CountingConnection.round_trips = 0
    # Other tests may share the server, so the server's count is a lower bound.
    assert _calls(counting_client, "set") - sets_before >= len(items)

    mgets_before = _calls(counting_client, "mget")
    CountingConnection.round_trips = 0
    assert cache.get_many(list(items)) == items
    assert CountingConnection.round_trips == expected_round_trips
    assert _calls(counting_client, "mget") - mgets_before >= expected_round_trips


def test_undecodable_value_is_a_miss(prefix: str) -> None:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    cache = RedisVerdictCache(client, ttl_seconds=600)
    cache.put_many({f"{prefix}good": verdict(1)})
    client.set(f"{prefix}bytes", b"\xff\x00garbage", ex=600)
    client.set(f"{prefix}shape", b'{"overall": 1}', ex=600)
    assert cache.get_many([f"{prefix}good", f"{prefix}bytes", f"{prefix}shape"]) == {f"{prefix}good": verdict(1)}
    assert not cache.disabled


def test_open_cache_uses_a_fail_fast_client(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_ENV, f"redis://{REDIS_HOST}:{REDIS_PORT}/0")
    cache = open_cache(CacheConfig(ttl_seconds=600), redis_conn_id=CONN_ID)
    assert isinstance(cache, RedisVerdictCache)
    assert f"{REDIS_HOST}:{REDIS_PORT}" in cache.describe()

    client: redis.Redis = cache._client
    connection = client.connection_pool.make_connection()
    assert connection.socket_connect_timeout == TIMEOUT_S
    assert connection.socket_timeout == TIMEOUT_S
    assert connection.retry.get_retries() == 0
    connection.disconnect()

    cache.put_many({f"{prefix}k": verdict(3)})
    assert cache.get_many([f"{prefix}k"]) == {f"{prefix}k": verdict(3)}
    cache.close()


@pytest.mark.parametrize(
    ("uri", "db"),
    [
        pytest.param(f"redis://{REDIS_HOST}:{REDIS_PORT}/7", 7, id="uri-path"),
        pytest.param(f"redis://{REDIS_HOST}:{REDIS_PORT}/0?db=6", 6, id="extra-db"),
    ],
)
def test_open_cache_writes_to_the_connections_database(
    prefix: str, monkeypatch: pytest.MonkeyPatch, uri: str, db: int
) -> None:
    """``RedisHook`` alone would use db 0 for ``redis://host/7``: the verdicts would land beside the
    Celery broker's keys (and another environment's), and a FLUSHDB on the broker would wipe them."""
    monkeypatch.setenv(CONN_ENV, uri)
    cache = open_cache(CacheConfig(ttl_seconds=600), redis_conn_id=CONN_ID)
    assert isinstance(cache, RedisVerdictCache)
    assert f"db {db}" in cache.describe()
    cache.put_many({f"{prefix}in-db": verdict(2)})
    cache.close()
    mine, zero = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db), redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        assert mine.exists(f"{prefix}in-db") == 1
        assert zero.exists(f"{prefix}in-db") == 0
    finally:
        mine.delete(f"{prefix}in-db")
        mine.close()
        zero.close()


def test_open_cache_with_unreachable_redis_is_null(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(CONN_ENV, "redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="judgeflow.judging.verdict_cache"):
        cache = open_cache(CacheConfig(), redis_conn_id=CONN_ID)
    assert isinstance(cache, NullVerdictCache)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "Redis cache at 127.0.0.1:1 db 0 unreachable" in m and "scoring goes on uncached" in m for m in messages
    ), messages
    assert cache.get_many(["k"]) == {}
    cache.put_many({"k": verdict(1)})


def test_silent_redis_costs_one_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts connections but never answers: one read timeout, no retry storm."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        monkeypatch.setenv(CONN_ENV, f"redis://127.0.0.1:{port}/0")
        started = time.monotonic()
        cache = open_cache(CacheConfig(), redis_conn_id=CONN_ID)
        elapsed = time.monotonic() - started
    assert isinstance(cache, NullVerdictCache)
    assert "unreachable" in cache.describe()
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S * 2


def test_server_dying_mid_task_never_raises(
    private_redis: tuple[int, subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, process = private_redis
    monkeypatch.setenv(CONN_ENV, f"redis://127.0.0.1:{port}/0")
    cache = open_cache(CacheConfig(ttl_seconds=600), redis_conn_id=CONN_ID)
    assert isinstance(cache, RedisVerdictCache)
    cache.put_many({"k": verdict(1)})
    assert cache.get_many(["k"]) == {"k": verdict(1)}

    process.terminate()
    process.wait(timeout=10)
    with caplog.at_level(logging.WARNING, logger="judgeflow.judging.verdict_cache"):
        started = time.monotonic()
        for _ in range(5):
            assert cache.get_many(["k"]) == {}
            cache.put_many({"k": verdict(2)})
        elapsed = time.monotonic() - started
        cache.close()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "disabled for the rest of this task" in warnings[0]
    assert cache.disabled and "disabled" in cache.describe()
    assert elapsed < TIMEOUT_S + TIMEOUT_S
