"""A warehouse connection becomes a URL or a provider hook's engine; a provider that is not installed is an
error naming the extra to install."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine

from judgeflow.connections import PROVIDERS, warehouse_target
from judgeflow.errors import ConfigError


class FakeConnection:
    """What ``BaseHook.get_connection`` returns, as far as judgeflow reads it."""

    def __init__(self, conn_type: str, host: str | None = None, **extra: Any) -> None:
        self.conn_id = "judge_warehouse"
        self.conn_type = conn_type
        self.host = host
        self.extra_dejson = extra
        self.extra = json.dumps(extra)
        self.login = self.password = self.schema = self.port = None


def _target(conn: FakeConnection | None) -> Any:
    return warehouse_target("judge_warehouse", embedded_path="/tmp/embedded.sqlite", lookup=lambda _id: conn)


@pytest.mark.parametrize(
    ("conn_type", "extra"),
    [
        pytest.param("google_cloud_platform", "bigquery", id="bigquery"),
        pytest.param("databricks", "databricks", id="databricks"),
        pytest.param("redshift", "redshift", id="redshift"),
        pytest.param("mysql", "mysql", id="mysql"),
    ],
)
def test_a_missing_provider_names_the_extra_to_install(conn_type: str, extra: str) -> None:
    with pytest.raises(ConfigError, match=rf"is a {conn_type} connection.*install the judgeflow\[{extra}\] extra"):
        _target(FakeConnection(conn_type))


def test_duckdb_comes_from_the_providers_hook(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = {"conn_type": "duckdb", "host": str(tmp_path / "w.duckdb")}
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", json.dumps(connection))  # the hook looks it up itself
    engine = _target(FakeConnection("duckdb", host=connection["host"]))
    assert isinstance(engine, Engine) and engine.dialect.name == "duckdb"
    engine.dispose()


def test_sqlite_postgres_and_an_explicit_url_stay_urls() -> None:
    assert _target(None) == "sqlite:////tmp/embedded.sqlite"
    assert _target(FakeConnection("sqlite", host="/data/w.sqlite")) == "sqlite:////data/w.sqlite"
    explicit = FakeConnection("snowflake", sqlalchemy_url="snowflake://u:p@acct/db/schema")
    assert _target(explicit) == "snowflake://u:p@acct/db/schema"


def test_every_provider_names_an_extra_of_the_package() -> None:
    import tomllib

    from tests.support import ROOT

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {p.extra for p in PROVIDERS.values()} <= set(extras)
