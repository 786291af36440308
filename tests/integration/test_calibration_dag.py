"""Calibration in the real DAG: the golden set judged by the emulator over HTTP before scoring.

A passing rubric version is stored and scores; a second run within ``every_days`` does not judge
again; a version whose agreement is below the floor, or whose canaries steer the judge, is refused
and nothing is scored; a judge that drifted from its first calibration alerts Slack once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, inspect

from judgeflow.config import CalibrationConfig
from judgeflow.rubric import load_rubric
from judgeflow.rubrics.calibration import evaluate
from judgeflow.rubrics.golden import load_golden_set
from judgeflow.storage.calibrations import CalibrationStore
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support.dag_runs import ROOT, deploy, run_dag, write_settings
from tests.support.warehouse_checks import count

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
PROJECT_GOLDEN = ROOT / "include" / "golden" / "helpfulness.jsonl"
GOLDEN_ITEMS = sum(1 for line in PROJECT_GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip())


@dataclass
class Env:
    engine: Engine
    folder: Path
    golden_dir: Path


@pytest.fixture
def env(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    rows = generate_responses(count=15, end=RUN_DATE, days=1, seed=11)
    seed_warehouse(engine, (r for r in rows if r["response"] and len(r["response"]) < 1000))
    golden_dir = tmp_path / "golden"
    golden_dir.mkdir()
    settings = write_settings(
        tmp_path,
        calibration={"golden_dir": str(golden_dir), "bootstrap_resamples": 200},
        alerts={"min_rolling_average": 0.0, "min_samples": 1000},  # quality alerts stay out of Slack here
    )
    deploy(monkeypatch, settings)
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))
    yield Env(engine, tmp_path, golden_dir)
    engine.dispose()


def use_golden(env: Env, transform=None) -> None:  # type: ignore[no-untyped-def]
    """The project's golden set, optionally with its human labels rewritten."""
    lines = [json.loads(line) for line in PROJECT_GOLDEN.read_text(encoding="utf-8").splitlines() if line.strip()]
    if transform is not None:
        lines = [transform(item) for item in lines]
    (env.golden_dir / "helpfulness.jsonl").write_text("".join(json.dumps(i) + "\n" for i in lines), encoding="utf-8")


def record_agreeing_calibration(env: Env, *, at: dt.datetime, endpoint: str) -> None:
    """A stored calibration in which the judge agreed with the human raters on every item."""
    rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
    golden = load_golden_set(env.golden_dir, rubric)
    assert golden is not None
    store = CalibrationStore(env.engine)
    store.ensure_schema()
    humans = {i.id: dict(i.scores) for i in golden.items}
    config = CalibrationConfig(bootstrap_resamples=200)
    store.record(evaluate(golden, humans, rubric=rubric, config=config, calibrated_at=at, endpoint=endpoint))


def calibration_runs(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM judge_calibration_runs ORDER BY id").mappings().all()
    return [dict(r) for r in rows]


def test_passing_calibration_is_stored_then_skipped_within_every_days(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_golden(env)
    with EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        first = run_dag(RUN_DATE)
        after_first = emulator.stats()["requests_total"]
        second = run_dag(RUN_DATE + dt.timedelta(days=1))
        after_second = emulator.stats()["requests_total"]

    assert first.state == "success", first.task_states
    assert first.states_of("calibrate_rubric") == ["success"] and first.states_of("score_batch")[0] == "success"
    [run] = calibration_runs(env.engine)
    assert run["passed"] and run["items"] == run["judged"] == GOLDEN_ITEMS
    assert (run["canaries_total"], run["canaries_failed"]) == (5, 0)
    assert run["length_spearman"] is not None
    with env.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT criterion, n, kappa, kappa_low, kappa_high, passed FROM judge_calibrations")
        by_criterion = {r.criterion: r for r in rows}
    assert set(by_criterion) == {"accuracy", "tone", "completeness"}
    for row in by_criterion.values():
        assert row.passed and row.n == GOLDEN_ITEMS - 5 and row.kappa_low <= row.kappa >= 0.4
    scored = count(env.engine, "SELECT COUNT(*) FROM app_responses")
    assert count(env.engine, "SELECT COUNT(*) FROM judge_scores") == scored, "golden items are not scores"
    assert after_first >= GOLDEN_ITEMS + scored, "the golden set reached the judge, not the verdict cache"

    assert second.state == "success", second.task_states
    assert len(calibration_runs(env.engine)) == 1, "calibrated a day ago: not judged again"
    assert after_second == after_first


def scores_stored(engine: Engine) -> int:
    """Rows in judge_scores; none when extract never ran (it creates the table)."""
    if "judge_scores" not in inspect(engine).get_table_names():
        return 0
    return count(engine, "SELECT COUNT(*) FROM judge_scores")


def disagree(item: dict) -> dict:
    """Human raters who score every ordinary answer the other way round."""
    if item.get("canary"):
        return item
    return {**item, "scores": {k: 6 - v for k, v in item["scores"].items()}}


def test_version_below_the_floor_is_refused_and_nothing_is_scored(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_golden(env, disagree)
    with EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        first = run_dag(RUN_DATE)
        requests = emulator.stats()["requests_total"]
        again = run_dag(RUN_DATE + dt.timedelta(days=1))

    assert first.state == "failed"
    assert first.states_of("calibrate_rubric") == ["failed"]
    assert first.states_of("extract_responses") == ["upstream_failed"]
    assert scores_stored(env.engine) == 0
    [run] = calibration_runs(env.engine)
    assert not run["passed"]
    assert run["reason"].startswith("accuracy: kappa -") and "is below the floor 0.40" in run["reason"]
    assert "tone: kappa" in run["reason"] and "completeness: kappa" in run["reason"]
    assert requests == GOLDEN_ITEMS, "only the golden set was judged"

    assert again.states_of("calibrate_rubric") == ["failed"], "a refused version stays refused"
    assert len(calibration_runs(env.engine)) == 1 and emulator.stats()["requests_total"] == requests


def test_canaries_are_caught_when_the_judge_obeys_injections(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_golden(env)
    with EmulatorServer(EmulatorConfig(latency_median_s=0.002, obey_injections=True)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE)

    assert result.states_of("calibrate_rubric") == ["failed"]
    assert scores_stored(env.engine) == 0
    [run] = calibration_runs(env.engine)
    assert (run["canaries_total"], run["canaries_failed"]) == (5, 5)
    assert "canary canary-01 obeyed the injection: scored accuracy 5, tone 5, completeness 5" in run["reason"]
    assert "kappa" not in run["reason"], "agreement on ordinary answers is unchanged"


def test_drift_from_the_first_calibration_alerts_slack_once(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    use_golden(env)
    week_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    with SlackReceiver() as slack, EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        # the first calibration, at the same endpoint a week ago: the judge agreed with the humans on every item
        record_agreeing_calibration(env, at=week_ago, endpoint=emulator.url.rstrip("/"))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slack.url))
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE)
        payloads = [json.dumps(p) for p in slack.payloads]

    assert result.state == "success", result.task_states
    runs = calibration_runs(env.engine)
    assert len(runs) == 2 and runs[1]["passed"], "drift alone does not refuse the version"
    drift = [p for p in payloads if "drifted" in p]
    assert len(drift) == 1, payloads
    assert "accuracy" in drift[0] and "kappa 1.00" in drift[0]


def test_a_calibration_made_at_another_endpoint_is_never_trusted(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A passed calibration judged by the local emulator (``judgeflow-dev calibrate --emulator``, or a
    trial) does not let the real endpoint score: the gate judges the golden set again at the endpoint
    the run uses, and stores which endpoint that was."""
    use_golden(env)
    record_agreeing_calibration(env, at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1), endpoint="http://127.0.0.1:1")
    with EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE)
        requests = emulator.stats()["requests_total"]
        endpoint = emulator.url.rstrip("/")

    assert result.state == "success", result.task_states
    runs = calibration_runs(env.engine)
    assert [r["judge_endpoint"] for r in runs] == ["http://127.0.0.1:1", endpoint]
    assert requests >= GOLDEN_ITEMS, "the golden set was judged again at the run's own endpoint"


def test_a_dry_run_does_not_calibrate(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pricing a backfill under a new rubric version spends nothing, not even on its golden set."""
    use_golden(env)
    with EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(RUN_DATE, conf={"dry_run": True, "rescore": True})
        requests = emulator.stats()["requests_total"]

    assert result.state == "success", result.task_states
    assert result.states_of("calibrate_rubric") == ["success"]
    assert requests == 0
    assert "judge_calibration_runs" not in inspect(env.engine).get_table_names() or not calibration_runs(env.engine)
