"""``judgeflow migrate-model``: the dry-run price holds against the emulator's bill, and the switch is gated.

The emulator bills every reply at its own copy of Anthropic's price list (its Haiku 5.5 tokenizer
makes 1.3x the tokens of Haiku 4.5's), so the estimate is checked against an invoice judgeflow did
not compute. The current model (Haiku 4.5) has scored the last seven days first, as the daily runs
would have; the command then prices, calibrates, shadows and compares on those days.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from judgeflow.cli import main as judgeflow
from judgeflow.rubric import load_rubric
from judgeflow.rubrics.migrate import MigrationPlan, shadow_run
from judgeflow.storage.sampling import SampleRule
from judgeflow.storage.warehouse import Warehouse
from judgeflow.suite import load_suite
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.conftest import anthropic_connection
from tests.support.dag_runs import ROOT, write_settings

NEW_MODEL = "claude-haiku-5-5"
OLD_MODEL = "claude-haiku-4-5"
DAYS = 7
PER_DAY = 20


@dataclass
class Env:
    engine: Engine
    url: str
    settings: Path
    rubric_dir: Path
    emulator: EmulatorServer

    def migrate(self, *extra: str) -> int:
        argv = ["migrate-model", "--settings", str(self.settings), "--url", self.url, "--to", NEW_MODEL]
        return judgeflow([*argv, "--days", str(DAYS), *extra])

    def scored(self, model: str) -> int:
        with self.engine.connect() as conn:
            query = "SELECT COUNT(*) FROM judge_scores WHERE model = ?"
            return int(conn.exec_driver_sql(query, (model,)).scalar_one())


def start_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: EmulatorConfig, **sections: Any
) -> Iterator[Env]:
    today = dt.datetime.combine(dt.datetime.now(dt.UTC).date(), dt.time(), dt.UTC)
    warehouse = tmp_path / "warehouse.sqlite"
    url = f"sqlite:///{warehouse}"
    engine = create_engine(url)
    seed_warehouse(engine, generate_responses(count=DAYS * PER_DAY, end=today, days=DAYS))
    rubric_dir = tmp_path / "rubrics"  # --apply edits the rubric file: a copy, never the project's
    shutil.copytree(ROOT / "include" / "rubrics", rubric_dir)
    settings = write_settings(
        tmp_path,
        rubric_dir=str(rubric_dir),
        calibration={"golden_dir": str(ROOT / "include" / "golden"), "bootstrap_resamples": 200},
        **sections,
    )
    monkeypatch.delenv("AIRFLOW_CONN_JUDGE_CACHE", raising=False)
    with EmulatorServer(config) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        yield Env(engine, url, settings, rubric_dir, emulator)
    engine.dispose()


@pytest.fixture
def env(tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    yield from start_env(tmp_path, monkeypatch, EmulatorConfig(latency_median_s=0.0))


def score_with_current_model(env: Env) -> None:
    """What the daily runs did before the migration: Haiku 4.5 scored every one of the days."""
    suite = load_suite(env.settings)
    settings = suite.settings
    rubric = load_rubric(settings.rubric_dir, settings.rubric)
    now = dt.datetime.now(dt.UTC)
    plan = MigrationPlan.last_days(settings, rubric, to_model=NEW_MODEL, days=DAYS, now=now)
    warehouse = Warehouse.from_url(env.url, settings.source)
    try:
        sample = SampleRule(settings.sampling, salt=suite.name)
        totals = shadow_run(warehouse, settings, plan, plan.current, sample=sample)
    finally:
        warehouse.close()
    assert totals.scored > 0 and not totals.stopped


def printed_estimate(out: str) -> float:
    found = re.search(r"dry-run estimate: \$([0-9.]+)", out)
    assert found, out
    return float(found.group(1))


def test_the_dry_run_estimate_is_within_ten_percent_of_what_the_emulator_billed(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    score_with_current_model(env)
    already = env.scored(OLD_MODEL)
    env.emulator.reset()  # the bill from here on is the migration's

    assert env.migrate("--dry-run") == 0
    dry = capsys.readouterr().out
    assert env.emulator.stats()["requests_total"] == 0, "a dry run judges nothing"
    estimate = printed_estimate(dry)

    assert env.migrate() == 0
    out = capsys.readouterr().out
    stats = env.emulator.stats()
    billed = stats["billed_usd_by_model"]
    assert printed_estimate(out) == estimate, "the real run prints the same estimate first"
    assert set(billed) == {NEW_MODEL}, "the current model had scored every day: only the candidate was billed"
    assert abs(estimate - billed[NEW_MODEL]) <= 0.10 * billed[NEW_MODEL], (estimate, billed, out)
    print(out, f"\nmigrate-model estimate ${estimate:.6f}, emulator billed ${billed[NEW_MODEL]:.6f}", sep="")

    assert "(ii) calibration gate with claude-haiku-5-5" in out and ": passed" in out
    assert env.scored(NEW_MODEL) == already, "the shadow run scored what the current model scored, no more"
    assert env.scored(OLD_MODEL) == already, "and the current model's scores are untouched"
    assert "weighted kappa between the models" in out and "(v) recommendation: switch" in out
    rubric_file = env.rubric_dir / "helpfulness.yaml"
    assert f"model: {OLD_MODEL}" in rubric_file.read_text(encoding="utf-8"), "no --apply: the rubric is unchanged"

    assert env.migrate("--apply") == 0, "a rerun resumes: gate fresh, nothing left to shadow"
    assert env.emulator.stats()["requests_total"] == stats["requests_total"], "and pays nothing again"
    assert load_rubric(env.rubric_dir, "helpfulness").model == NEW_MODEL
    assert env.migrate() == 2, "the rubric now uses the new model: nothing to migrate"


def test_a_refused_gate_keeps_the_model_and_shadows_nothing(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gullible = EmulatorConfig(latency_median_s=0.0, obey_injections=True)  # the golden set's canaries catch it
    for env in start_env(tmp_path, monkeypatch, gullible):
        assert env.migrate("--apply") == 1
        out = capsys.readouterr().out
        assert ": refused" in out and "(v) recommendation: stay on claude-haiku-4-5" in out
        assert env.scored(NEW_MODEL) == 0, "no shadow run after a refusal"
        rubric_file = env.rubric_dir / "helpfulness.yaml"
        assert f"model: {OLD_MODEL}" in rubric_file.read_text(encoding="utf-8"), "--apply wrote nothing"


def test_a_migration_priced_over_the_backfill_cap_is_refused_before_spending(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capped = {"max_backfill_cost_usd": 0.001}  # a week of 140 responses for both models costs cents
    for env in start_env(tmp_path, monkeypatch, EmulatorConfig(latency_median_s=0.0), budget=capped):
        assert env.migrate() == 2
        captured = capsys.readouterr()
        assert "over budget.max_backfill_cost_usd" in captured.err
        assert printed_estimate(captured.out) > 0.001
        assert env.emulator.stats()["requests_total"] == 0, "refused before the gate or the shadow run spent anything"
