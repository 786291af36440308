"""The whole daily DAG on the warehouses that can run here: MariaDB, DuckDB, Snowflake (fakesnow's server).

One run each, on a few dozen responses, with an id type per warehouse (integer on MariaDB, UUID on
DuckDB, text on Snowflake) and one row whose id is NULL. The connection is the kind a team would add:
``mysql`` (through PyMySQL's URL: the MySQL provider needs a C build, see docs/warehouses.md),
``duckdb`` through the DuckDB provider's hook, ``snowflake`` through the Snowflake provider's hook
and the real connector, pointed at fakesnow. ``judgeflow db upgrade`` runs first, as an operator would.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BigInteger, Column, DateTime, Engine, MetaData, String, Table, Text, Uuid, create_engine, text
from sqlalchemy.dialects import mysql

from judgeflow.storage.engine import warehouse_engine
from judgeflow_devkit.emulator import EmulatorConfig
from judgeflow_devkit.sample_data import generate_responses
from tests.conftest import require_tcp
from tests.support.dag_runs import deploy, run_judged_by, write_settings
from tests.support.warehouse_checks import outcome_counts

RUN_DATE = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
MARIADB = "mysql+pymysql://root@127.0.0.1:3306"


@dataclass(frozen=True)
class Target:
    """A warehouse for one test: the Airflow connection the DAG uses, and an engine for seeding and checks."""

    connection: str
    engine: Engine
    id_kind: str  # int | uuid | text


@pytest.fixture
def mariadb() -> Iterator[Target]:
    require_tcp("MariaDB", ("127.0.0.1", 3306))
    database = f"jf_test_{secrets.token_hex(4)}"
    admin = create_engine(f"{MARIADB}/test")
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    url = f"{MARIADB}/{database}?charset=utf8mb4"
    engine = warehouse_engine(url)
    try:
        yield Target(json.dumps({"conn_type": "mysql", "extra": {"sqlalchemy_url": url}}), engine, "int")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE {database}"))
        admin.dispose()


@pytest.fixture
def duckdb(tmp_path: Path) -> Iterator[Target]:
    path = tmp_path / "warehouse.duckdb"
    engine = warehouse_engine(f"duckdb:///{path}")
    yield Target(json.dumps({"conn_type": "duckdb", "host": str(path)}), engine, "uuid")
    engine.dispose()


@pytest.fixture
def snowflake() -> Iterator[Target]:
    import fakesnow

    with fakesnow.server() as fake:
        network = {"protocol": "http", "host": fake["host"], "port": fake["port"], "network_timeout": 10}
        connect_args = {**network, "session_parameters": fake["session_parameters"]}
        setup = create_engine("snowflake://fake:snow@fakesnow", connect_args=connect_args)
        with setup.begin() as conn:
            conn.exec_driver_sql("CREATE DATABASE IF NOT EXISTS judge")
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS judge.app")
        setup.dispose()
        engine = warehouse_engine(create_engine("snowflake://fake:snow@fakesnow/judge/app", connect_args=connect_args))
        connection = {
            "conn_type": "snowflake",
            "login": "fake",
            "password": "snow",
            "schema": "app",
            "extra": {
                "account": "fakesnow",
                "database": "judge",
                "host": fake["host"],
                "port": fake["port"],
                "engine_kwargs": {"connect_args": connect_args},
            },
        }
        yield Target(json.dumps(connection), engine, "text")
        engine.dispose()


def _source(metadata: MetaData, id_kind: str) -> Table:
    """``app_responses`` with the warehouse's own types; the id column is nullable (a NULL id is bad input)."""
    id_type: Any = {"int": BigInteger(), "uuid": Uuid(), "text": String(64)}[id_kind]
    long_text = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    return Table(
        "app_responses",
        metadata,
        Column("id", id_type, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("question", long_text, nullable=False),
        Column("context", long_text),
        Column("response", long_text),
        Column("topic", String(40)),
    )


def _seed(target: Target, count: int) -> int:
    """``count`` responses of the judged day, ids of the warehouse's kind, plus one with a NULL id."""
    metadata = MetaData()
    source = _source(metadata, target.id_kind)
    metadata.create_all(target.engine)
    rows = list(generate_responses(count=count, end=RUN_DATE, days=1, seed=5, first_id=1))
    for row in rows:
        row["id"] = {"int": row["id"], "uuid": uuid.UUID(int=row["id"]), "text": f"resp-{row['id']:04d}"}[
            target.id_kind
        ]
    rows.append({**rows[-1], "id": None, "question": "a row that lost its id"})
    with target.engine.begin() as conn:
        conn.execute(source.insert(), rows)
    return count


WAREHOUSES = [
    pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb"),
    pytest.param("duckdb", id="duckdb"),
    pytest.param("snowflake", id="snowflake-fakesnow"),
]


@pytest.mark.parametrize("kind", WAREHOUSES)
def test_the_daily_dag_end_to_end(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judgeflow.cli import main as judgeflow

    target: Target = request.getfixturevalue(kind)
    seeded = _seed(target, 24)
    settings = write_settings(tmp_path, batching={"batch_size": 10})
    deploy(monkeypatch, settings)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", target.connection)
    if kind == "duckdb":
        target.engine.dispose()  # one process holds a DuckDB file; the tasks open it next

    assert judgeflow(["db", "upgrade", "--settings", str(settings)]) == 0
    result, stats = run_judged_by(EmulatorConfig(latency_median_s=0.002), monkeypatch, RUN_DATE)

    assert result.state == "success", result.task_states
    counts = outcome_counts(target.engine, result.run_id)
    assert counts["staged"] == seeded  # the NULL id is not staged ...
    assert counts["neither"] == 0 and counts["both"] == 0  # ... and every staged response is accounted for
    assert counts["scored"] >= seeded - 2  # the NULL and empty responses of the sample end as errors
    assert stats["requests_total"] > 0
    with target.engine.connect() as conn:
        details = conn.execute(text("SELECT details FROM judge_runs")).scalar_one()
        days = conn.execute(text("SELECT COUNT(*) FROM judge_daily_scores")).scalar_one()
        scored_at = conn.execute(text("SELECT MIN(scored_at) FROM judge_scores")).scalar_one()
    details = json.loads(details) if isinstance(details, str) else details
    assert details["invalid_null_id"] == 1  # ... it is recorded as invalid input
    assert days > 0  # the per-day rollup ran in the warehouse's own date functions
    assert abs(_utc(scored_at) - dt.datetime.now(dt.UTC)) < dt.timedelta(hours=1)  # UTC in, UTC out


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_a_missing_source_column_is_named_with_its_table(tmp_path: Path) -> None:
    from judgeflow.config import SourceConfig
    from judgeflow.errors import ConfigError
    from judgeflow.storage.warehouse import Warehouse

    engine = warehouse_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE app_responses (id INTEGER, created_at TIMESTAMPTZ, question TEXT)")
    try:
        with pytest.raises(
            ConfigError, match=r"table 'app_responses' has no column\(s\) response \(columns: id, created"
        ):
            Warehouse(engine, SourceConfig(context_column=None))
    finally:
        engine.dispose()
