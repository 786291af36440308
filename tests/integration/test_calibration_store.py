"""The calibration tables on both warehouse dialects: append, read the latest and the first back."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from judgeflow.calibration import evaluate
from judgeflow.calibration_store import CalibrationStore
from judgeflow.config import CalibrationConfig
from judgeflow.golden import load_golden_set
from judgeflow.rubric import load_rubric
from tests.conftest import POSTGRES_URL, require_tcp
from tests.support.dag_runs import ROOT

T0 = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
        yield engine
        engine.dispose()
        return
    require_tcp("PostgreSQL", ("127.0.0.1", 5432))
    schema = f"jf_test_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = create_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_runs_are_appended_and_read_back(engine: Engine) -> None:
    rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
    golden = load_golden_set(ROOT / "include" / "golden", rubric)
    assert golden is not None
    config = CalibrationConfig(bootstrap_resamples=100)
    humans = {i.id: dict(i.scores) for i in golden.items}
    flat = {i.id: {"accuracy": 3, "tone": 3, "completeness": 3} for i in golden.items}  # constant: undefined
    store = CalibrationStore(engine)
    store.ensure_schema()
    store.ensure_schema()  # idempotent

    first_id = store.record(evaluate(golden, humans, rubric=rubric, config=config, calibrated_at=T0))
    later_id = store.record(evaluate(golden, flat, rubric=rubric, config=config, calibrated_at=T0 + dt.timedelta(7)))

    key = {"rubric_name": rubric.name, "rubric_version": rubric.version_key, "model": rubric.model}
    latest = store.latest_run(**key, golden_set=golden.digest)
    assert latest is not None and latest.id == later_id and latest.calibrated_at == T0 + dt.timedelta(7)
    assert not latest.passed and "kappa is undefined (judge scores are all 3)" in latest.reason
    assert store.latest_run(**key, golden_set="another golden set") is None
    first = store.first_kappas(**key, golden_set=golden.digest)
    assert first is not None and first[0] == T0
    assert first[1] == {"accuracy": pytest.approx(1.0), "tone": pytest.approx(1.0), "completeness": pytest.approx(1.0)}
    rows = {r["criterion"]: r for r in store.criterion_rows(later_id)}
    assert set(rows) == set(rubric.criterion_names)
    assert rows["tone"]["kappa"] is None and rows["tone"]["spearman"] is None and rows["tone"]["mae"] is not None
    assert rows["tone"]["n"] == len(golden.items) - len(golden.canaries) and rows["tone"]["passed"] is False
    assert {r["passed"] for r in store.criterion_rows(first_id)} == {True}
