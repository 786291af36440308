"""A rubric change, the Airflow way: new version side by side, priced backfill, versions compared.

The backfill is what ``airflow backfill create --run-conf '{"rescore": true}'`` makes: one run per
logical date with that conf. Here each run goes through ``dag.test()`` against the emulator over
HTTP; the scheduler-driven ``airflow backfill create`` is exercised by the stack test.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from judgeflow.config import load_settings
from judgeflow.rubric import load_rubric
from judgeflow.rubrics.backfill import backfill_total, estimate_backfill
from judgeflow.rubrics.commands import estimate_main
from judgeflow.rubrics.versions import compare_versions
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import ROOT, RunResult, deploy, run_dag, write_settings
from tests.support.warehouse_checks import count

FIRST_RUN = dt.datetime(2026, 11, 16, tzinfo=dt.UTC)  # judges 2026-11-15
DAYS = 5  # responses on 2026-11-15 .. 2026-11-19
PER_DAY = 24
DAY = dt.timedelta(days=1)


@dataclass
class Env:
    engine: Engine
    url: str
    settings: Path
    rubric_file: Path
    emulator: EmulatorServer

    def edit_rubric(self) -> None:
        """Reword the instructions without bumping the declared version, as people do."""
        text = self.rubric_file.read_text(encoding="utf-8")
        edited = text.replace("Score each criterion on its own:", "Score each criterion independently:")
        assert edited != text
        self.rubric_file.write_text(edited, encoding="utf-8")

    def rubric_version(self) -> str:
        settings = load_settings(self.settings)
        return load_rubric(settings.rubric_dir, settings.rubric).version_key

    def warehouse(self) -> Warehouse:
        return Warehouse.from_url(self.url, load_settings(self.settings).source)


def unique_rows() -> Iterator[dict[str, Any]]:
    """Five days of sample answers, each made unique the way production text is (no cache hits)."""
    end = FIRST_RUN + (DAYS - 1) * DAY
    for row in generate_responses(count=DAYS * PER_DAY, end=end, days=DAYS, seed=11):
        if row["id"] > 5:  # the awkward rows have their own tests
            yield {**row, "response": f"{row['response']} (ticket {row['id']})"}


@pytest.fixture
def env(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    rubrics = tmp_path / "rubrics"
    shutil.copytree(ROOT / "include" / "rubrics", rubrics)
    settings = write_settings(tmp_path, rubric_dir=str(rubrics))
    warehouse = tmp_path / "warehouse.sqlite"
    url = f"sqlite:///{warehouse}"
    engine = create_engine(url)
    seed_warehouse(engine, unique_rows())
    deploy(monkeypatch, settings)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))
    with EmulatorServer(EmulatorConfig(latency_median_s=0.005)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        yield Env(engine, url, settings, rubrics / "helpfulness.yaml", emulator)
    engine.dispose()


def succeeded(result: RunResult) -> bool:
    return result.state == "success" and all(
        s in ("success", "skipped") for states in result.task_states.values() for s in states
    )


def responses_on(engine: Engine, first: dt.datetime, last: dt.datetime) -> set[int]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT id FROM app_responses WHERE created_at >= ? AND created_at < ?",
            (first.replace(tzinfo=None), last.replace(tzinfo=None)),
        ).all()
    return {int(r[0]) for r in rows}


def scored_under(engine: Engine, version: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT response_id FROM judge_scores WHERE rubric_version = ? ORDER BY response_id", (version,)
        ).all()
    return [int(r[0]) for r in rows]


def test_a_rubric_edit_is_a_new_version_and_the_old_scores_stay(env: Env) -> None:
    old = env.rubric_version()
    assert succeeded(run_dag(FIRST_RUN))
    old_rows = scored_under(env.engine, old)
    assert sorted(old_rows) == sorted(responses_on(env.engine, FIRST_RUN - DAY, FIRST_RUN))

    env.edit_rubric()
    new = env.rubric_version()
    assert new != old and new.split("+")[0] == old.split("+")[0], "same declared version, new content hash"
    assert succeeded(run_dag(FIRST_RUN + DAY))

    assert scored_under(env.engine, old) == old_rows, "the old version's rows stay"
    assert sorted(scored_under(env.engine, new)) == sorted(responses_on(env.engine, FIRST_RUN, FIRST_RUN + DAY)), (
        "the next run scores its own day under the new version, and does not quietly re-judge "
        "the days the old version scored (that is a backfill, priced first)"
    )


def test_backfill_rescores_exactly_its_days_once_at_the_estimated_price(env: Env) -> None:
    old = env.rubric_version()
    for day in range(DAYS):  # the old version scored every day
        assert succeeded(run_dag(FIRST_RUN + day * DAY))
    env.edit_rubric()
    new = env.rubric_version()
    logical = [FIRST_RUN + DAY, FIRST_RUN + 2 * DAY, FIRST_RUN + 3 * DAY]  # judge 11-16, 11-17, 11-18
    settings = load_settings(env.settings)
    rubric = load_rubric(settings.rubric_dir, settings.rubric)
    days = estimate_backfill(
        env.warehouse(), settings, rubric, from_date=logical[0].date(), to_date=logical[-1].date(), mode="realtime"
    )
    estimate = backfill_total(days)
    requests_before = env.emulator.stats()["requests_total"]

    for when in logical:
        assert succeeded(run_dag(when, conf={"rescore": True}))

    expected = responses_on(env.engine, logical[0] - DAY, logical[-1])
    rescored = scored_under(env.engine, new)
    assert sorted(rescored) == sorted(expected), "exactly the backfill's days, once each"
    assert len(scored_under(env.engine, old)) == (DAYS * PER_DAY) - 5, "every old score is still there"
    assert estimate.responses == len(expected) == estimate.requests
    assert env.emulator.stats()["requests_total"] - requests_before == len(expected)
    billed = count_cost(env.engine, new)
    assert abs(estimate.cost_usd - billed) <= 0.10 * billed, (estimate, billed)

    comparison = compare_versions(env.warehouse(), rubric.name, old, new)
    assert {s.criterion for s in comparison.shifts} == {*rubric.criterion_names, "overall"}
    assert all(s.n == len(expected) for s in comparison.shifts)
    # The emulator's verdicts do not read the instructions, so this edit moved nothing: the
    # comparison must say so rather than invent a shift.
    assert all(s.shift == 0 and s.spearman == pytest.approx(1.0) for s in comparison.shifts)


def count_cost(engine: Engine, version: str) -> float:
    with engine.connect() as conn:
        return float(
            conn.exec_driver_sql("SELECT SUM(cost_usd) FROM judge_scores WHERE rubric_version = ?", (version,)).scalar()
        )


def test_a_dry_run_prices_the_run_and_judges_nothing(env: Env, records_of: Any) -> None:
    log_records = records_of("judgeflow.tasks.pipeline")
    result = run_dag(FIRST_RUN, conf={"rescore": True, "dry_run": True})

    assert result.state == "success", result.task_states
    assert result.states_of("extract_responses") == ["success"]
    assert result.states_of("summarize_run") == ["skipped"]
    assert env.emulator.stats()["requests_total"] == 0
    assert count(env.engine, "SELECT COUNT(*) FROM judge_scores") == 0
    assert count(env.engine, "SELECT COUNT(*) FROM judge_run_items") == 0, "a dry run leaves no work list"
    messages = [r.getMessage() for r in log_records]
    assert any(m.startswith("estimated cost under helpfulness: ") and "responses" in m for m in messages), messages


def test_a_backfill_over_the_cap_is_refused_before_spending(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capped = write_settings(tmp_path, rubric_dir=str(env.rubric_file.parent), budget={"max_backfill_cost_usd": 0.001})
    deploy(monkeypatch, capped)

    result = run_dag(FIRST_RUN + DAY, conf={"rescore": True})

    assert result.states_of("extract_responses") == ["failed"]
    assert env.emulator.stats()["requests_total"] == 0, "refused before a single request"
    assert count(env.engine, "SELECT COUNT(*) FROM judge_run_items") == 0

    code = estimate_main(
        ["--settings", str(capped), "--url", env.url, "--from-date", "2026-11-17", "--to-date", "2026-11-19"]
    )
    out, err = capsys.readouterr()
    assert code == 2
    assert "refused" in err and "max_backfill_cost_usd" in err
    assert "2026-11-16" in out and "2026-11-18" in out, "the judged days, one before each logical date"


def test_an_estimate_without_rescore_counts_the_backlog_once(env: Env) -> None:
    """Only the backfill's first run picks up older unscored responses; later runs find them judged."""
    settings = load_settings(env.settings)
    rubric = load_rubric(settings.rubric_dir, settings.rubric)
    first, last = FIRST_RUN + 2 * DAY, FIRST_RUN + 4 * DAY  # judge 11-17 .. 11-19, with 11-15 and 11-16 waiting
    warehouse = env.warehouse()
    try:
        days = estimate_backfill(
            warehouse, settings, rubric, from_date=first.date(), to_date=last.date(), mode="realtime", rescore=False
        )
    finally:
        warehouse.engine.dispose()

    waiting = responses_on(env.engine, FIRST_RUN - 10 * DAY, last)
    assert backfill_total(days).responses == len(waiting), "every unscored response priced once"
    assert days[0].estimate.responses == len(responses_on(env.engine, FIRST_RUN - 10 * DAY, first))
    assert days[1].estimate.responses == len(responses_on(env.engine, first, first + DAY))
