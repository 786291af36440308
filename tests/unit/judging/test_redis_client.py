"""The one Redis factory: the database from ``extra.db`` or the URI path, parsed as Airflow parses the connection.

``RedisHook`` alone reads only ``extra.db``: ``redis://host:6379/7`` would silently land in db 0 (the
Celery broker's, in the compose stack). These tests build connections the way Airflow does (from the
URI in ``AIRFLOW_CONN_*`` and from JSON) and check which database each client really uses.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from judgeflow.errors import ConfigError
from judgeflow.judging.redis_client import RedisTarget, open_async_redis, redis_target

CONN_ID = "judgeflow_test_redis_target"


DATABASES = {
    "uri-path": ("redis://127.0.0.1:6379/7", 7),
    "extra-db-wins-over-the-path": ("redis://127.0.0.1:6379/7?db=3", 3),
    "extra-db": ("redis://127.0.0.1:6379?db=2", 2),
    "neither-is-db-0": ("redis://127.0.0.1:6379", 0),
    "empty-path-is-db-0": ("redis://127.0.0.1:6379/", 0),
}


@pytest.mark.parametrize(("uri", "db"), DATABASES.values(), ids=DATABASES.keys())
def test_the_database_comes_from_extra_db_or_the_uri_path(monkeypatch: pytest.MonkeyPatch, uri: str, db: int) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", uri)
    target = redis_target(CONN_ID)
    assert target is not None
    assert target.db == db
    assert target.client_kwargs()["db"] == db


def test_json_connection_with_extra_db(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "redis", "host": "cache.internal", "port": 6380, "password": "s3cret", "extra": {"db": 5}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    target = redis_target(CONN_ID)
    assert target == RedisTarget(CONN_ID, "cache.internal", 6380, 5, None, "s3cret", {})
    assert "s3cret" not in repr(target) and "s3cret" not in target.describe()


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("redis://127.0.0.1:6379/cache", id="path-not-a-number"),
        pytest.param("redis://127.0.0.1:6379?db=two", id="extra-db-not-a-number"),
    ],
)
def test_a_database_that_is_not_a_number_names_the_connection(monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", uri)
    with pytest.raises(ConfigError, match=CONN_ID):
        redis_target(CONN_ID)


def test_a_cluster_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", "redis://127.0.0.1:6379?cluster=true")
    with pytest.raises(ConfigError, match="cluster"):
        redis_target(CONN_ID)


def test_no_such_connection_is_none() -> None:
    assert redis_target("judgeflow_no_such_connection") is None
    assert asyncio.run(open_async_redis("judgeflow_no_such_connection")) is None
