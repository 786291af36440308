"""Two suites in one deployment, end to end with ``dag.test()``: each with its own source, rubrics,
sample and Slack channel, and an Asset event for its scores.

The search suite reads JSON log events through a query, samples half of them (at least 10 per
locale), and judges the same sample under two rubrics from one staging; the support suite judges
every response of its table under one rubric, keyed as before suites.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from judgeflow_devkit.sample_data import generate_responses, generate_search_events, seed_search_events, seed_warehouse
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.conftest import anthropic_connection, sqlite_connection
from tests.support import ROOT
from tests.support.dag_runs import run_dag

RUN_DATE = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
SEARCH = """
source:
  query: |
    SELECT id, logged_at AS created_at, payload ->> 'query' AS question, payload ->> 'answer' AS response,
           payload ->> 'passages' AS context, payload ->> 'locale' AS locale
    FROM search_events WHERE kind = 'answer'
  segment_columns: [locale]
rubrics: [faithfulness, concision]
sampling: {rate: 0.5, by: locale, min_per_segment: 10}
schedule: {asset: "warehouse://analytics/search_events"}
connections: {slack: slack_search}
alerts: {min_rolling_average: 5.0, open_after_days: 1}
"""
SUPPORT = "connections: {slack: slack_support}\nalerts: {min_rolling_average: 1.0}\n"


def assert_succeeded(result) -> None:  # type: ignore[no-untyped-def]
    assert result.state == "success", result.task_states


def test_two_suites_judge_their_own_sources_under_their_own_rubrics(
    tmp_path: Path, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = tmp_path / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    seed_warehouse(engine, (r for r in generate_responses(count=40, end=RUN_DATE, seed=61) if r["id"] > 5))
    answers = seed_search_events(engine, generate_search_events(count=160, end=RUN_DATE, seed=62, first_id=1001))
    include = tmp_path / "include"
    (include / "suites").mkdir(parents=True)
    defaults = {
        "rubric_dir": str(ROOT / "include" / "rubrics"),
        "cache": {"embedded_path": str(tmp_path / "cache.sqlite")},
        "alerts": {"min_samples": 5, "report_folder": str(tmp_path / "reports")},
        "batching": {"batch_size": 30},
    }
    (include / "judgeflow.yaml").write_text(json.dumps(defaults), encoding="utf-8")
    (include / "suites" / "search.yaml").write_text(SEARCH, encoding="utf-8")
    (include / "suites" / "support.yaml").write_text(SUPPORT, encoding="utf-8")
    monkeypatch.setenv("JUDGEFLOW_INCLUDE_DIR", str(include))
    monkeypatch.setenv("AIRFLOW_CONN_JUDGE_WAREHOUSE", sqlite_connection(warehouse))
    with (
        SlackReceiver() as search_slack,
        SlackReceiver() as support_slack,
        EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator,
    ):
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_SEARCH", connection_json(search_slack.url))
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_SUPPORT", connection_json(support_slack.url))
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        search = run_dag(RUN_DATE, dag_id="llm_judge__search")
        support = run_dag(RUN_DATE, dag_id="llm_judge__support")
        search_alerts, support_alerts = search_slack.payloads, support_slack.payloads

    assert_succeeded(search)
    assert_succeeded(support)
    with engine.connect() as conn:
        staged = (
            conn.execute(
                text("SELECT response_id FROM judge_run_items WHERE run_key = :k ORDER BY response_id"),
                {"k": f"llm_judge__search/{search.run_id}"},
            )
            .scalars()
            .all()
        )
        judged = {
            rubric: conn.execute(
                text(
                    "SELECT response_id FROM judge_scores WHERE rubric_name = :r UNION "
                    "SELECT response_id FROM judge_errors WHERE rubric_name = :r ORDER BY response_id"
                ),
                {"r": rubric},
            )
            .scalars()
            .all()
            for rubric in ("faithfulness", "concision", "helpfulness")
        }
        runs = {
            row.run_key: row
            for row in conn.execute(text("SELECT run_key, suite, sample_rate, extracted, unaccounted FROM judge_runs"))
        }
        locales = "SELECT payload ->> 'locale' AS locale, id FROM search_events WHERE kind = 'answer'"
        population = dict(conn.execute(text(f"SELECT locale, COUNT(*) FROM ({locales}) GROUP BY 1")).all())
        per_locale = dict(
            conn.execute(
                text(
                    f"SELECT e.locale, COUNT(*) FROM judge_run_items i JOIN ({locales}) e ON e.id = i.response_id "
                    "WHERE i.run_key = :k GROUP BY 1"
                ),
                {"k": f"llm_judge__search/{search.run_id}"},
            ).all()
        )
        comparison_keys = set(conn.execute(text("SELECT DISTINCT run_key FROM judge_comparisons")).scalars())

    assert 0.4 * answers < len(staged) < 0.75 * answers, "a sample, staged once"
    batches = -(-len(staged) // 30)
    assert search.states_of("score_batch") == ["success"] * 2 * batches, "mapped over rubric x batch"
    assert judged["faithfulness"] == judged["concision"] == staged, "both rubrics judged the same sample"
    assert all(per_locale[k] >= min(10, n) for k, n in population.items()), (per_locale, population)
    assert set(judged["helpfulness"]) == set(range(6, 41)), "the support suite judged its own table"
    search_key, support_key = f"llm_judge__search/{search.run_id}", f"llm_judge__support/{support.run_id}"
    assert set(runs) == {f"{search_key}/faithfulness", f"{search_key}/concision", support_key}
    assert {(r.suite, r.sample_rate) for r in runs.values()} == {("search", 0.5), ("support", 1.0)}
    assert all(r.extracted == len(staged) and r.unaccounted == 0 for k, r in runs.items() if k != support_key)
    assert comparison_keys == set(runs), "comparisons kept apart per rubric"
    assert [r for r in ("faithfulness", "concision") for a in search_alerts if r in a["text"]] == [
        "faithfulness",
        "concision",
    ], "one alert per rubric in the search suite's channel"
    assert support_alerts == [], "each suite's alerts go to its own channel"
    assert_asset_events(engine, search.run_id)


def assert_asset_events(engine, run_id: str) -> None:  # type: ignore[no-untyped-def]
    """The search suite's scores Asset got one event from this run, saying what it wrote."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.uri == "judgeflow://search/judge_scores", AssetEvent.source_run_id == run_id)
            .all()
        )
        extras = [dict(e.extra) for e in events]
    assert len(extras) == 1, extras
    (extra,) = extras
    assert (extra["suite"], extra["sample_rate"]) == ("search", 0.5)
    with engine.connect() as conn:
        for entry in extra["rubrics"]:
            written, mean = conn.execute(
                text("SELECT COUNT(*), AVG(overall) FROM judge_scores WHERE rubric_name = :r AND dag_run_id = :d"),
                {"r": entry["rubric"], "d": run_id},
            ).one()
            assert entry["rows_written"] == written > 0
            assert entry["mean"] == pytest.approx(mean, abs=1e-4)
    assert extra["rows_written"] == sum(e["rows_written"] for e in extra["rubrics"])
