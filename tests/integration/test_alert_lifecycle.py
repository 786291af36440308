"""A quality drop is announced once, stays quiet while it lasts, and its recovery is announced.

Three daily runs of the real DAG on SQLite + emulator, with Slack going to a local webhook receiver.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import deploy, run_dag, write_settings
from tests.support.warehouse_checks import count

DAY = dt.timedelta(days=1)
FIRST_BAD_DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
# One bad day pages and one good day recovers here (the defaults wait two of each: test_alert_timeline.py).
ONE_DAY_RULES = {
    "min_samples": 20,
    "min_rolling_average": 1.0,
    "open_after_days": 1,
    "recover_days": 1,
    "max_pool_days": 1,
}


def day_of_rows(start: dt.datetime, first_id: int, *, drop: bool) -> Any:
    for row in generate_responses(count=45, end=start + DAY, days=1, seed=first_id, first_id=first_id):
        if row["id"] < first_id + 5:
            continue  # the generator's awkward rows are tested elsewhere
        if drop and row["topic"] in ("shipping", "billing"):
            row = {**row, "response": f"{row['response']} [[quality:low]]"}
        yield row


def test_drop_alerts_once_then_recovers(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    for n in range(7):  # a normal week before the drop
        seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY - (7 - n) * DAY, 1000 * (n + 1), drop=False))
    seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY, 20_000, drop=True))
    seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY + DAY, 21_000, drop=True))
    seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY + 2 * DAY, 22_000, drop=False))
    # the lifecycle of one regression on unpooled days (pooling: test_segment_drop.py)
    settings = write_settings(tmp_path, alerts=ONE_DAY_RULES)
    deploy(monkeypatch, settings)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))

    with SlackReceiver() as slack, EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slack.url))
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        day1 = run_dag(FIRST_BAD_DAY + DAY)
        after_day1 = len(slack.wait_for(1, timeout=5))
        day2 = run_dag(FIRST_BAD_DAY + 2 * DAY)
        after_day2 = len(slack.payloads)
        day3 = run_dag(FIRST_BAD_DAY + 3 * DAY)
        messages = [json.dumps(p) for p in slack.wait_for(2, timeout=5)]

    assert [r.state for r in (day1, day2, day3)] == ["success"] * 3
    assert after_day1 == 1 and "regression" in messages[0].lower()
    assert "Open the report" in messages[0]
    reports = list((tmp_path / "reports").glob("*/index.html"))
    assert len(reports) == 3 and all(len(list(r.parent.glob("*.png"))) >= 1 for r in reports)
    pages = [r.read_text(encoding="utf-8") for r in reports]
    dropped = [p for p in pages if "<strong>Quality dropped: " in p]
    assert dropped, "a regression's report opens with its headline"
    assert all('id="cause">Likely cause: topic=' in p for p in dropped)
    assert all("/dags/" in p and "/judgeflow/responses?rubric=" in p and "segment=topic%3D" in p for p in dropped)
    assert "Where it dropped" in messages[0] and ("topic=shipping" in messages[0] or "topic=billing" in messages[0])
    assert after_day2 == 1, (
        f"the same open regression is not announced again: {[json.dumps(p)[:600] for p in slack.payloads]}"
    )
    assert len(messages) == 2 and "recovered" in messages[1].lower()
    assert count(engine, "SELECT COUNT(*) FROM judge_alert_state") == 0, "nothing left open"
    assert count(engine, "SELECT COUNT(*) FROM judge_comparisons WHERE status = 'regression'") > 0


def test_slack_down_keeps_the_alert_for_the_next_run(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    for n in range(7):
        seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY - (7 - n) * DAY, 1000 * (n + 1), drop=False))
    seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY, 20_000, drop=True))
    seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY + DAY, 21_000, drop=True))
    # the lifecycle of one regression on unpooled days (pooling: test_segment_drop.py)
    settings = write_settings(tmp_path, alerts=ONE_DAY_RULES)
    deploy(monkeypatch, settings)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))

    with SlackReceiver(status=500) as slack, EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slack.url))
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        down = run_dag(FIRST_BAD_DAY + DAY)
        slack.status = 200
        up = run_dag(FIRST_BAD_DAY + 2 * DAY)
        payloads = slack.wait_for(2, timeout=5)

    assert down.state == "success", "Slack being down does not fail the scoring"
    assert up.state == "success"
    assert len(payloads) == 2 and "regression" in json.dumps(payloads[1]).lower(), "announced once Slack is back"
