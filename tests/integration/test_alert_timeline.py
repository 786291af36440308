"""Twenty-eight days of the real DAG, one run per day, with a regression from day 10 to day 23, then a
five-day backfill inside it and a manual rerun of a past day (issue 15: tests a and b).

SQLite warehouse, the emulator (steered per day with ``[[quality:low]]`` on half the responses of a
bad day), Slack going to the dev kit's receiver. The timeline runs once for the module; each test
reads what on-call received, day by day. The messages are printed (``-s``) as on-call gets them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
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
DAY1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAYS = 28
BAD = range(10, 24)  # days 10..23: fourteen days down
BACKFILL = range(12, 17)  # five days inside the regression
RERUN_DAY = 20
REMIND_EVERY = 4
PER_DAY = 30


def day_start(day: int) -> dt.datetime:
    return DAY1 + (day - 1) * DAY


def rows_of(day: int) -> Iterator[dict[str, Any]]:
    first_id = 1000 * day
    for row in generate_responses(count=PER_DAY + 5, end=day_start(day) + DAY, days=1, seed=day, first_id=first_id):
        if row["id"] < first_id + 5:
            continue  # the generator's awkward rows are tested elsewhere
        if day in BAD and row["id"] % 2 == 0:
            row = {**row, "response": f"{row['response']} [[quality:low]]"}
        yield row


@dataclass
class Timeline:
    by_day: dict[int, list[str]]  # day -> message texts received after that day's run
    states: dict[int, str]
    backfill: list[str]
    backfill_states: list[str]
    rerun: list[str]
    rerun_state: str
    state_rows_before: int
    state_rows_after: int
    history_before: int
    history_after: int


def _texts(payloads: list[Any]) -> list[str]:
    return [json.dumps(p, ensure_ascii=False) for p in payloads]


def as_on_call_reads_it(text: str) -> str:
    """The message's header and sections, as Slack shows them."""
    lines = []
    for block in json.loads(text)["blocks"]:
        if "text" in block:
            lines.append(block["text"]["text"])
        lines.extend(field["text"].replace("\n", ": ") for field in block.get("fields", ()))
        lines.extend(e.get("text", "") for e in block.get("elements", ()) if isinstance(e.get("text"), str))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory, airflow_db: Path) -> Iterator[Timeline]:
    tmp_path = tmp_path_factory.mktemp("alert-timeline")
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    for day in range(1, DAYS + 1):
        seed_warehouse(engine, rows_of(day))
    settings = write_settings(
        tmp_path,
        alerts={"min_samples": 5, "min_rolling_average": 1.0, "remind_every_days": REMIND_EVERY, "recover_days": 1},
        batching={"backlog_days": 1},
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        deploy(monkeypatch, settings)
        monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))
        with SlackReceiver() as slack, EmulatorServer(EmulatorConfig(latency_median_s=0.001)) as emulator:
            monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slack.url))
            monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
            by_day, states = {}, {}
            for day in range(1, DAYS + 1):
                seen = len(slack.payloads)
                states[day] = run_dag(day_start(day) + DAY).state
                by_day[day] = _texts(slack.payloads[seen:])
            state_before = count(engine, "SELECT COUNT(*) FROM judge_alert_state")
            history_before = count(engine, "SELECT COUNT(*) FROM judge_alert_history")
            seen = len(slack.payloads)
            conf = {
                "backfill_from": f"{day_start(BACKFILL[0]):%Y-%m-%d}",
                "backfill_until": f"{day_start(BACKFILL[-1]):%Y-%m-%d}",
            }
            backfill_states = [run_dag(day_start(day) + DAY, conf).state for day in BACKFILL]
            backfill = _texts(slack.payloads[seen:])
            seen = len(slack.payloads)
            rerun_state = run_dag(day_start(RERUN_DAY) + DAY).state  # `airflow dags test` of a past day: manual
            rerun = _texts(slack.payloads[seen:])
            yield Timeline(
                by_day,
                states,
                backfill,
                backfill_states,
                rerun,
                rerun_state,
                state_before,
                count(engine, "SELECT COUNT(*) FROM judge_alert_state"),
                history_before,
                count(engine, "SELECT COUNT(*) FROM judge_alert_history"),
            )
    engine.dispose()


def _kind(text: str) -> str:
    head = json.loads(text)["blocks"][0]["text"]["text"]
    for word, kind in (("quality drop", "new"), ("still down", "reminder"), ("recovered", "recovered")):
        if word in head:
            return kind
    return head


def test_a_regression_of_fourteen_days_is_announced_once_reminded_and_recovered_when_back(timeline: Timeline) -> None:
    assert set(timeline.states.values()) == {"success"}
    told = {day: [_kind(t) for t in texts] for day, texts in timeline.by_day.items() if texts}
    for day, texts in sorted(timeline.by_day.items()):
        for text in texts:
            print(f"--- day {day} ({day_start(day):%Y-%m-%d}):\n{as_on_call_reads_it(text)}")
    # open_after_days 2 (the default): found on day 10, confirmed and announced on day 11
    first_bad, announced = BAD[0], BAD[0] + 1
    reminders = list(range(announced + REMIND_EVERY, BAD[-1] + 1, REMIND_EVERY))
    assert told == {announced: ["new"], **{d: ["reminder"] for d in reminders}, BAD[-1] + 1: ["recovered"]}
    new = timeline.by_day[announced][0]
    assert f"{day_start(announced):%Y-%m-%d}" in json.loads(new)["blocks"][0]["text"]["text"], "names its interval"
    assert "measured against" in new and f"→ {day_start(first_bad):%Y-%m-%d}" in new, "the frozen reference"
    reminder = timeline.by_day[reminders[0]][0]
    assert f"below the level before {day_start(first_bad):%Y-%m-%d}" in reminder
    assert "judgeflow alerts accept helpfulness" in reminder
    recovered = timeline.by_day[BAD[-1] + 1][0]
    assert f"back to the level before {day_start(first_bad):%Y-%m-%d}" in recovered
    assert timeline.state_rows_before == 0 and timeline.history_before >= 1, "closed into the history"


def test_b_a_backfill_inside_it_pages_no_one_and_sends_one_digest(timeline: Timeline) -> None:
    for text in timeline.backfill:
        print(f"--- backfill:\n{as_on_call_reads_it(text)}")
    assert timeline.backfill_states == ["success"] * len(BACKFILL)
    assert len(timeline.backfill) == 1, "no page, one digest"
    digest = timeline.backfill[0]
    assert "backfill digest" in digest and "(historical)" in digest
    assert f"{len(BACKFILL)} days judged" in digest
    assert "overall: 5 days" in digest, "the regression found in that history"
    assert "/dags/llm_judge_daily/runs" in digest
    assert (timeline.state_rows_after, timeline.history_after) == (
        timeline.state_rows_before,
        timeline.history_before,
    ), "history runs move no alert state"


def test_a_manual_rerun_of_a_past_day_pages_no_one(timeline: Timeline) -> None:
    assert timeline.rerun_state == "success"
    assert timeline.rerun == []
