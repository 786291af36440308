"""Test (c) of issue 15: a drop in one segment of ten responses a day is announced within three days,
and called local.

The real DAG, one run per day, on SQLite with the emulator; Slack goes to the local receiver. Four
topics bring 30 responses a day each and ``shipping`` 10, so all responses barely move when shipping
falls (less than ``min_drop``): only the shipping segment can see it, and with ``min_samples`` at its
default of 30 it sees it only by pooling its last days. A clean day runs first and must stay quiet.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import deploy, run_dag, write_settings

DAY = dt.timedelta(days=1)
FIRST_BAD_DAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
OTHERS = ("billing", "returns", "account", "product")
SHIPPING_PER_DAY = 10
PER_DAY = 13 * SHIPPING_PER_DAY  # 10 shipping + 4 x 30 others


def day_of_rows(start: dt.datetime, first_id: int, *, drop: bool) -> Iterator[dict[str, Any]]:
    """130 responses over the day: every 13th is about shipping; on a bad day shipping's are low."""
    rows = generate_responses(count=PER_DAY + 5, end=start + DAY, days=1, seed=first_id, first_id=first_id)
    for i, row in enumerate(r for r in rows if r["id"] >= first_id + 5):  # the awkward rows are tested elsewhere
        topic = "shipping" if i % 13 == 0 else OTHERS[i % 4]
        response = row["response"] + (" [[quality:low]]" if drop and topic == "shipping" else "")
        yield {**row, "topic": topic, "response": response}


def test_a_drop_in_a_ten_a_day_segment_is_announced_within_three_days_and_called_local(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    for n in range(10):  # ten clean days: a week's baseline behind three pooled days
        seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY - (10 - n) * DAY, 1000 * (n + 1), drop=False))
    for n in range(3):
        seed_warehouse(engine, day_of_rows(FIRST_BAD_DAY + n * DAY, 20_000 + 1000 * n, drop=True))
    settings = write_settings(tmp_path, alerts={"min_samples": 30, "min_rolling_average": 1.0, "max_pool_days": 7})
    deploy(monkeypatch, settings)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))

    messages: list[list[str]] = []  # what Slack received after each run
    with SlackReceiver() as slack, EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slack.url))
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        runs = []
        for day in range(-1, 3):  # the clean day before, then the three bad days
            runs.append(run_dag(FIRST_BAD_DAY + (day + 1) * DAY))
            messages.append([json.dumps(p, ensure_ascii=False) for p in slack.payloads])

    assert [r.state for r in runs] == ["success"] * 4
    assert messages[0] == [], f"the clean day stays quiet: {messages[0]}"
    # only the three bad days run: announced at all means announced within three days
    announced = next((day for day, sent in enumerate(messages[1:], start=1) if sent), None)
    assert announced is not None, "the shipping drop was not announced within three days"
    first = messages[announced][0]
    print(f"\nannounced on bad day {announced} of 3; the message on-call received:\n{first}")
    # pooled over three days (30 answers of ten a day), the bad days the pending drop left out of baselines included
    assert "overall [topic=shipping]" in first and "over 3 days, detects ≥" in first, first
    assert "local: topic=shipping carries" in first, first

    with engine.connect() as conn:
        stored = conn.execute(
            text(
                "SELECT segment, details FROM judge_comparisons "
                "WHERE metric = 'overall' AND segment IN ('', 'topic=shipping') ORDER BY run_key"
            )
        ).all()
    rows = [(segment, json.loads(d) if isinstance(d, str) else d) for segment, d in stored]
    everyone = [d for segment, d in rows if segment == ""]
    shipping = [d for segment, d in rows if segment == "topic=shipping"]
    assert len(everyone) == len(shipping) == 4
    assert all(r["status"] != "regression" for r in everyone), "all responses never crossed min_drop"
    assert min(r["days_pooled"] for r in shipping) == 3, "30 shipping scores take three days of ten"
    assert any(r["status"] == "regression" for r in shipping)
    causes = [r["root_cause"] for r in everyone if r["root_cause"]["kind"] == "local"]
    assert causes and causes[-1]["shares"][0]["segment"] == "topic=shipping", "the view can read the root cause"
