"""judgeflow's tables in a team's PostgreSQL: taken over in place from today's schema with its data, created
from the DDL a DBA ran, and used afterwards by a role that has only SELECT on the source and DML on
judgeflow's tables (a missing grant is an error that names the grant)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, MetaData, create_engine, inspect, text

from judgeflow.cli import main as judgeflow
from judgeflow.config import SourceConfig
from judgeflow.errors import ConfigError
from judgeflow.storage import migrate
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.emulator import EmulatorConfig
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support.dag_runs import deploy, run_judged_by, write_settings
from tests.support.postgres import throwaway_schema
from tests.support.warehouse_checks import outcome_counts

pytestmark = pytest.mark.postgres
RUN_DATE = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 10, 1, 6, tzinfo=dt.UTC)


@pytest.fixture
def schema() -> Iterator[str]:
    with throwaway_schema("jf_mig") as name:
        yield name


def _engine(schema: str, user: str = "postgres") -> Engine:
    return create_engine(f"postgresql+psycopg://{user}@127.0.0.1:5432/test?options=-csearch_path%3D{schema}")


def _release_0_1_tables(engine: Engine) -> None:
    """Today's schema as ``create_all`` made it, from a deployment that predates ``judge_endpoint`` and the
    view's index: the baseline's frozen definitions, less what older releases lacked."""
    spec = importlib.util.spec_from_file_location("baseline", migrate.MIGRATIONS / "versions" / "0001_baseline.py")
    assert spec is not None and spec.loader is not None
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    metadata = MetaData()
    tables = {t.name: t for t in baseline._tables(metadata, Integer())}
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE judge_calibration_runs DROP COLUMN judge_endpoint"))
        conn.execute(text("DROP INDEX ix_judge_scores_rubric_overall"))
        conn.execute(tables["judge_scores"].insert(), [_score_row(i) for i in (1, 2, 3)])
        conn.execute(
            text(
                "INSERT INTO judge_calibration_runs (rubric_name, rubric_version, model, golden_set, items, judged,"
                " canaries_total, canaries_failed, cost_usd, passed, reason, calibrated_at)"
                " VALUES ('helpfulness', '1+abc', 'm', 'g', 3, 3, 0, 0, 0.0, true, '', :t)"
            ),
            {"t": T0},
        )


def _score_row(response_id: int) -> dict[str, Any]:
    return {
        "response_id": response_id,
        "rubric_name": "helpfulness",
        "rubric_version": "1+abc",
        "overall": 3.5,
        "rationale": "kept",
        "model": "m",
        **dict.fromkeys(("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens", "latency_ms"), 1),
        "cost_usd": 0.001,
        "cache_hit": False,
        "truncated": False,
        "dag_run_id": "old-run",
        "scored_at": T0,
    }


def test_todays_deployment_upgrades_in_place_and_keeps_its_data(schema: str, tmp_path: Path) -> None:
    engine = _engine(schema)
    seed_warehouse(engine, generate_responses(count=3, end=RUN_DATE))
    _release_0_1_tables(engine)
    with pytest.raises(ConfigError, match=r"created by a judgeflow before migrations.*judgeflow db upgrade"):
        Warehouse(engine, SourceConfig()).ensure_schema()  # a run stops before judging

    url = engine.url.render_as_string(hide_password=False)
    assert judgeflow(["db", "upgrade", "--url", url, "--settings", str(write_settings(tmp_path))]) == 0

    assert migrate.current(engine) == migrate.head()
    found = inspect(engine)
    assert "judge_endpoint" in {c["name"] for c in found.get_columns("judge_calibration_runs")}
    assert "ix_judge_scores_rubric_overall" in {ix["name"] for ix in found.get_indexes("judge_scores")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM judge_scores WHERE rationale = 'kept'")).scalar_one() == 3
        assert conn.execute(text("SELECT judge_endpoint FROM judge_calibration_runs")).all() == [(None,)]
    Warehouse(engine, SourceConfig()).ensure_schema()  # at head now: the run goes on
    engine.dispose()


def test_a_dba_runs_the_ddl_and_a_dml_only_role_runs_the_dag(
    schema: str, tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = _engine(schema)
    seeded = seed_warehouse(owner, (r for r in generate_responses(count=20, end=RUN_DATE, seed=3) if r["id"] > 5))
    settings = write_settings(tmp_path)
    url = owner.url.render_as_string(hide_password=False)

    assert judgeflow(["db", "sql", "--url", url, "--settings", str(settings)]) == 0
    ddl = capsys.readouterr().out
    assert "CREATE TABLE judge_scores" in ddl and "INSERT INTO judgeflow_alembic_version" in ddl
    with owner.begin() as conn:  # the DBA reviews it and runs it
        conn.exec_driver_sql(ddl)
    migrate.check(owner)  # tables a DBA created are accepted as they are

    role = f"jf_runner_{secrets.token_hex(3)}"
    own = ", ".join(t for t in inspect(owner).get_table_names() if t.startswith(("judge_", "judgeflow_")))
    with owner.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {own} TO {role}")
        conn.exec_driver_sql(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    try:
        runner_url = _engine(schema, role).url.render_as_string(hide_password=False)
        deploy(monkeypatch, settings)
        monkeypatch.setenv(
            "AIRFLOW_CONN_JUDGE_WAREHOUSE",
            json.dumps({"conn_type": "postgres", "extra": {"sqlalchemy_url": runner_url}}),
        )

        refused, _ = run_judged_by(EmulatorConfig(latency_median_s=0.002), monkeypatch, RUN_DATE)
        assert refused.states_of("extract_responses") == ["failed"]  # no SELECT on the source yet

        with owner.begin() as conn:
            conn.exec_driver_sql(f"GRANT SELECT ON app_responses TO {role}")
        result, _ = run_judged_by(EmulatorConfig(latency_median_s=0.002), monkeypatch, RUN_DATE)

        assert result.state == "success", result.task_states
        counts = outcome_counts(owner, result.run_id)
        assert counts["staged"] == seeded and counts["neither"] == 0
    finally:
        with owner.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()


def test_a_missing_grant_is_an_error_naming_the_grant(schema: str) -> None:
    owner = _engine(schema)
    seed_warehouse(owner, generate_responses(count=2, end=RUN_DATE))
    Warehouse(owner, SourceConfig()).upgrade_schema()
    role = f"jf_reader_{secrets.token_hex(3)}"
    with owner.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")  # SELECT only
    runner = _engine(schema, role)
    try:
        warehouse = Warehouse(runner, SourceConfig())
        warehouse.ensure_schema()
        with pytest.raises(ConfigError, match=r"GRANT SELECT, INSERT, UPDATE, DELETE ON judge_run_items"):
            warehouse.discard_run_items("dag/run")
        with owner.begin() as conn:
            conn.exec_driver_sql(f"REVOKE SELECT ON app_responses FROM {role}")
        with pytest.raises(ConfigError, match=r"the role lacks a grant: GRANT SELECT ON app_responses TO"):
            warehouse.null_ids(RUN_DATE - dt.timedelta(days=1), RUN_DATE)
    finally:
        runner.dispose()
        with owner.begin() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        owner.dispose()
