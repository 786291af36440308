"""Accepting a lasting level shift: ``judgeflow alerts open | accept`` and the view's POST, on a real
SQLite warehouse. The regression closes into ``judge_alert_history`` with who, when and why, and later
baselines start at its first day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Header, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from judgeflow.cli import main as judgeflow
from judgeflow.config import SourceConfig
from judgeflow.quality.alert_state import Level, OpenRegression, Reference
from judgeflow.storage.view_reads import Reader
from judgeflow.storage.warehouse import Warehouse
from judgeflow.suite import load_suite
from judgeflow.ui.app import Editor, build_app
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support.dag_runs import write_settings
from tests.support.warehouse_checks import count

DOWN_SINCE = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
REFERENCE = Reference(Level(3.34, 3.2, 3.48, 210), DOWN_SINCE - dt.timedelta(days=7), DOWN_SINCE)


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[tuple[Warehouse, str, Path]]:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = create_engine(url)
    seed_warehouse(engine, generate_responses(count=10, end=DOWN_SINCE, days=1))
    engine.dispose()
    wh = Warehouse.from_url(url, SourceConfig())
    wh.ensure_schema()
    opened = OpenRegression("overall", -1.21, DOWN_SINCE + dt.timedelta(days=2), REFERENCE)
    wh.alerts.save_open_regressions("helpfulness", "v1", {"overall": opened})
    yield wh, url, write_settings(tmp_path)
    wh.close()


def test_the_command_lists_then_accepts_and_baselines_start_at_the_shift(
    warehouse: tuple[Warehouse, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wh, url, settings = warehouse
    common = ["--url", url, "--settings", str(settings)]

    assert judgeflow(["alerts", "open", "helpfulness", *common]) == 0
    assert "v1\toverall\topen\tsince 2026-11-10\t-1.21 against 3.34 (n=210)" in capsys.readouterr().out

    code = judgeflow(
        ["alerts", "accept", "helpfulness", "overall", "--reason", "new refund policy", "--by", "alice", *common]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "accepted 'overall' of rubric helpfulness (version v1) as the new normal: -1.21 from 3.34" in out
    assert "by alice" in out and "new refund policy" in out and "Baselines now start at 2026-11-10" in out

    assert wh.alerts.open_regressions("helpfulness", "v1") == {}
    assert count(wh.engine, "SELECT COUNT(*) FROM judge_alert_history WHERE outcome = 'accepted'") == 1
    assert count(wh.engine, "SELECT COUNT(*) FROM judge_alert_history WHERE accepted_by = 'alice'") == 1
    excluded, floor = wh.alerts.baseline_exclusions("helpfulness", "v1")
    assert (excluded, floor) == ([], DOWN_SINCE), "the accepted shift is the start of later baselines"


def test_accepting_what_is_not_open_names_the_table_and_what_is_open(
    warehouse: tuple[Warehouse, str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, url, settings = warehouse
    code = judgeflow(
        ["alerts", "accept", "helpfulness", "tone", "--reason", "why not", "--url", url, "--settings", str(settings)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "no open regression 'tone' in judge_alert_state for rubric helpfulness; open: ['overall (v1)']" in err


def _guard(x_role: str = Header("viewer")) -> None:
    if x_role != "editor":
        raise HTTPException(status_code=403, detail="edit rights on the DAG needed")


def _user(x_user: str = Header("nobody")) -> str:
    return x_user


def test_the_view_accepts_for_the_dags_editors_only(warehouse: tuple[Warehouse, str, Path]) -> None:
    wh, _, settings = warehouse
    reader = Reader(wh, load_suite(settings).settings)
    app = build_app(lambda: reader, dependencies=[], editor=Editor(guard=[_depends(_guard)], user=_user))
    body: dict[str, Any] = {"rubric": "helpfulness", "regression": "overall", "reason": "new refund policy"}
    with TestClient(app) as client:
        refused = client.post("/alerts/accept", params={"dag_id": "llm_judge_daily"}, json=body)
        assert refused.status_code == 403
        headers = {"X-Role": "editor", "X-User": "bob"}
        done = client.post("/alerts/accept", params={"dag_id": "llm_judge_daily"}, json=body, headers=headers)
        assert done.status_code == 200, done.text
        assert done.json()["accepted"]["by"] == "bob"
        again = client.post("/alerts/accept", params={"dag_id": "llm_judge_daily"}, json=body, headers=headers)
        assert again.status_code == 404 and "no open regression 'overall'" in again.json()["detail"]
    assert count(wh.engine, "SELECT COUNT(*) FROM judge_alert_history WHERE accepted_by = 'bob'") == 1


def _depends(function: Any) -> Any:
    from fastapi import Depends

    return Depends(function)
