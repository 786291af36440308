"""The calibration tables on both warehouse dialects: append, read the latest and the first back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, Table, create_engine, inspect, text

from judgeflow.config import CalibrationConfig
from judgeflow.rubric import load_rubric
from judgeflow.rubrics.calibration import evaluate
from judgeflow.rubrics.golden import load_golden_set
from judgeflow.storage import migrate
from judgeflow.storage.calibrations import CalibrationStore
from judgeflow.storage.schema import calibration_tables
from tests.support.dag_runs import ROOT
from tests.support.postgres import schema_engine, throwaway_schema

ENDPOINT = "https://api.anthropic.com"
T0 = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
        yield engine
        engine.dispose()
        return
    with throwaway_schema("jf_test") as schema:
        engine = schema_engine(schema)
        try:
            yield engine
        finally:
            engine.dispose()


def test_runs_are_appended_and_read_back(engine: Engine) -> None:
    rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
    golden = load_golden_set(ROOT / "include" / "golden", rubric)
    assert golden is not None
    config = CalibrationConfig(bootstrap_resamples=100)
    humans = {i.id: dict(i.scores) for i in golden.items}
    flat = {i.id: {"accuracy": 3, "tone": 3, "completeness": 3} for i in golden.items}  # constant: undefined
    store = CalibrationStore(engine)
    migrate.upgrade(engine, id_type=None)  # `judgeflow db upgrade` (SQLite would upgrade by itself)
    store.ensure_schema()
    store.ensure_schema()  # idempotent

    at = {"config": config, "rubric": rubric, "endpoint": ENDPOINT}
    first_id = store.record(evaluate(golden, humans, calibrated_at=T0, **at))
    later_id = store.record(evaluate(golden, flat, calibrated_at=T0 + dt.timedelta(7), **at))

    key = {"rubric_name": rubric.name, "rubric_version": rubric.version_key, "model": rubric.model}
    latest = store.latest_run(**key, golden_set=golden.digest, endpoint=ENDPOINT)
    assert latest is not None and latest.id == later_id and latest.calibrated_at == T0 + dt.timedelta(7)
    assert not latest.passed and "kappa is undefined (judge scores are all 3)" in latest.reason
    assert store.latest_run(**key, golden_set="another golden set", endpoint=ENDPOINT) is None
    assert store.latest_run(**key, golden_set=golden.digest, endpoint="http://127.0.0.1:8765") is None
    first = store.first_kappas(**key, golden_set=golden.digest, endpoint=ENDPOINT)
    assert first is not None and first[0] == T0
    assert first[1] == {"accuracy": pytest.approx(1.0), "tone": pytest.approx(1.0), "completeness": pytest.approx(1.0)}
    rows = {r["criterion"]: r for r in store.criterion_rows(later_id)}
    assert set(rows) == set(rubric.criterion_names)
    assert rows["tone"]["kappa"] is None and rows["tone"]["spearman"] is None and rows["tone"]["mae"] is not None
    assert rows["tone"]["n"] == len(golden.items) - len(golden.canaries) and rows["tone"]["passed"] is False
    assert {r["passed"] for r in store.criterion_rows(first_id)} == {True}


def test_a_store_made_before_endpoints_were_recorded_is_upgraded_in_place(engine: Engine) -> None:
    """Yesterday's ``judge_calibration_runs`` (no ``judge_endpoint``) gains the column and keeps its rows;
    a calibration with no recorded endpoint is trusted for no endpoint, so the gate calibrates again."""
    old = MetaData()
    _, runs = calibration_tables(old)
    columns = [c.copy() for c in runs.columns if c.name != "judge_endpoint"]
    Table(runs.name, MetaData(), *columns).create(engine)
    row = {
        "rubric_name": "helpfulness",
        "rubric_version": "1+abc",
        "model": "claude-haiku-4-5",
        "golden_set": "g",
        "items": 3,
        "judged": 3,
        "canaries_total": 0,
        "canaries_failed": 0,
        "cost_usd": 0.0,
        "passed": True,
        "reason": "",
        "calibrated_at": T0,
    }
    with engine.begin() as conn:
        conn.execute(Table(runs.name, MetaData(), autoload_with=conn).insert(), [row])

    store = CalibrationStore(engine)
    migrate.upgrade(engine, id_type=None)  # `judgeflow db upgrade` takes the old table over in place
    store.ensure_schema()

    assert "judge_endpoint" in {c["name"] for c in inspect(engine).get_columns(runs.name)}
    with engine.connect() as conn:
        kept = conn.execute(text(f"SELECT rubric_version, judge_endpoint FROM {runs.name}")).all()
    assert [tuple(r) for r in kept] == [("1+abc", None)]
    key = {"rubric_name": "helpfulness", "rubric_version": "1+abc", "model": "claude-haiku-4-5", "golden_set": "g"}
    assert store.latest_run(**key, endpoint=ENDPOINT) is None
