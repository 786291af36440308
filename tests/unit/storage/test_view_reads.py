"""judgeflow.storage.daily_scores and judgeflow.storage.view_reads on the embedded SQLite warehouse."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from judgeflow.config import BatchingConfig, Settings, SourceConfig
from judgeflow.quality.alert_state import OpenRegression
from judgeflow.records import CriterionScore, ScoreRecord, Usage
from judgeflow.rubric import load_rubric
from judgeflow.storage.calibrations import CalibrationStore
from judgeflow.storage.daily_scores import refresh_daily_scores, refresh_for_run
from judgeflow.storage.view_reads import Reader
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support import ROOT

END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
RUBRIC, VERSION = "helpfulness", "1+test"


def _scores(response_id: int) -> dict[str, int]:
    return {"accuracy": 1 + response_id % 5, "tone": 5 - response_id % 3}


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    seed_warehouse(create_engine(url), generate_responses(count=90, end=END, days=3, seed=1))
    wh = Warehouse.from_url(url, SourceConfig())
    wh.ensure_schema()
    records = []
    for rid in range(1, 91):
        criteria = {name: CriterionScore(score, f"{name} reason") for name, score in _scores(rid).items()}
        overall = 0.7 * criteria["accuracy"].score + 0.3 * criteria["tone"].score
        records.append(
            ScoreRecord(
                rid,
                RUBRIC,
                VERSION,
                overall,
                criteria,
                "claude-haiku-4-5",
                Usage(10, 5),
                0.001,
                5,
                rid % 4 == 0,
                False,
                "run-1",
                END,
            )
        )
    wh.write(records, [])
    wh.record_run(
        {
            "run_key": "k1",
            "dag_id": "d",
            "dag_run_id": "run-1",
            "rubric_name": RUBRIC,
            "rubric_version": VERSION,
            "interval_start": END - DAY,
            "interval_end": END,
            "extracted": 91,
            "scored": 90,
            "from_cache": 22,
            "errors": 1,
            "unaccounted": 0,
            "input_tokens": 900,
            "output_tokens": 450,
            "cost_usd": 0.09,
            "details": {"malformed": 1},
            "finished_at": END,
        }
    )
    return wh


def _expected_means() -> dict[tuple[dt.date, str], float]:
    """Per creation day and metric, the mean computed here in Python from the generator's timestamps."""
    sums: dict[tuple[dt.date, str], list[float]] = defaultdict(list)
    for row in generate_responses(count=90, end=END, days=3, seed=1):
        scores = _scores(row["id"])
        day = row["created_at"].date()
        sums[(day, "accuracy")].append(scores["accuracy"])
        sums[(day, "tone")].append(scores["tone"])
        sums[(day, "overall")].append(0.7 * scores["accuracy"] + 0.3 * scores["tone"])
    return {key: sum(values) / len(values) for key, values in sums.items()}


def test_daily_scores_give_the_exact_daily_means(warehouse: Warehouse) -> None:
    rows = refresh_daily_scores(
        warehouse, rubric_name=RUBRIC, rubric_version=VERSION, start=(END - 3 * DAY).date(), end=END.date()
    )
    reader = Reader(warehouse, Settings())
    scope = reader.scope()

    assert rows > 0 and scope is not None and scope.rubric_version == VERSION
    assert scope.last_day == (END - DAY).date()
    trend = {(p.day, p.metric): p.mean for p in reader.trend(scope)}
    assert trend == pytest.approx(_expected_means())
    weekly = reader.weekly_counts(scope)
    assert next(iter(weekly)) == "overall"
    assert weekly["accuracy"].current.total == 90 and weekly["accuracy"].baseline.total == 0


def test_refresh_is_idempotent_and_follows_the_run_items(warehouse: Warehouse) -> None:
    staged = warehouse.stage_run(
        run_key="k1",
        rubrics=[load_rubric(ROOT / "include" / "rubrics", "helpfulness")],  # staged under its own version
        start=END - DAY,
        end=END,
        rescore=True,
        limit=None,
        batching=BatchingConfig(batch_size=100, max_batches=4),
    )

    first = refresh_for_run(warehouse, run_key="k1", rubric_name=RUBRIC, rubric_version=VERSION)
    again = refresh_for_run(warehouse, run_key="k1", rubric_name=RUBRIC, rubric_version=VERSION)

    assert staged == 30  # the last day's responses
    assert first == again > 0
    days = {p.day for p in Reader(warehouse, Settings()).trend(Reader(warehouse, Settings()).scope())}  # type: ignore[arg-type]
    assert days == {(END - DAY).date()}
    assert refresh_for_run(warehouse, run_key="nothing-staged", rubric_name=RUBRIC, rubric_version=VERSION) == 0


def _comparisons(warehouse: Warehouse, run_key: str, end: dt.datetime, rows: list[tuple[str, str, str, float]]) -> None:
    warehouse.record_run(
        {
            "run_key": run_key,
            "dag_id": "d",
            "dag_run_id": run_key,
            "rubric_name": RUBRIC,
            "rubric_version": VERSION,
            "interval_start": end - DAY,
            "interval_end": end,
            "extracted": 0,
            "scored": 0,
            "from_cache": 0,
            "errors": 0,
            "unaccounted": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.0,
            "details": {},
            "finished_at": end,
        }
    )
    warehouse.alerts.record_comparisons(
        run_key=run_key,
        rubric_name=RUBRIC,
        rubric_version=VERSION,
        rows=[
            {
                "metric": m,
                "segment": s or None,
                "status": st,
                "baseline_n": 50,
                "current_n": 50,
                "difference": d,
                "p_value": 0.01,
                "baseline_mean": 4.0,
                "current_mean": 4.0 + d,
            }
            for m, s, st, d in rows
        ],
    )


def test_regression_states_follow_what_on_call_was_told(warehouse: Warehouse) -> None:
    first, second = END - DAY, END
    _comparisons(warehouse, "r1", first, [("accuracy", "", "regression", -1.0), ("tone", "", "regression", -0.5)])
    _comparisons(
        warehouse,
        "r2",
        second,
        [
            ("accuracy", "", "regression", -1.5),
            ("tone", "", "stable", 0.02),
            ("overall", "topic=billing", "regression", -0.6),
            ("completeness", "", "regression", -0.4),
        ],
    )
    warehouse.alerts.save_open_regressions(
        RUBRIC,
        VERSION,
        {  # accuracy opened by r1 and announced again at r2's drop; completeness opened by r2; tone recovered
            "accuracy": OpenRegression("accuracy", -1.5, first),
            "completeness": OpenRegression("completeness", -0.4, second),
        },
    )
    reader = Reader(warehouse, Settings())

    states = {r.key: r.state for r in reader.regressions(reader.scope())}  # type: ignore[arg-type]

    assert states == {
        "accuracy": "worsening",
        "completeness": "open",
        "overall in topic=billing": "open",  # still found by the latest run; the alert has not gone out
        "tone": "recovered",
    }


def test_lowest_responses_are_redacted_and_truncated(warehouse: Warehouse) -> None:
    secret = "write to jane.doe@example.com with key sk-ant-abcdefghijklmnop " + "and more words " * 40
    with warehouse.engine.begin() as conn:
        conn.execute(warehouse.scores.update().where(warehouse.scores.c.response_id == 5).values(rationale=secret))
    refresh_daily_scores(
        warehouse, rubric_name=RUBRIC, rubric_version=VERSION, start=(END - 3 * DAY).date(), end=END.date()
    )
    reader = Reader(warehouse, Settings())

    lowest = reader.lowest_responses(reader.scope())  # type: ignore[arg-type]

    assert [r.overall for r in lowest] == sorted(r.overall for r in lowest)
    leaked = next(r for r in lowest if r.response_id == "5")
    assert "jane.doe" not in leaked.rationale and "sk-ant" not in leaked.rationale
    assert "[email]" in leaked.rationale and len(leaked.rationale) == Settings().ui.text_chars


def test_versions_show_the_latest_calibration_per_criterion(warehouse: Warehouse) -> None:
    store = CalibrationStore(warehouse.engine)
    store.ensure_schema()
    base = {"rubric_name": RUBRIC, "rubric_version": VERSION, "model": "claude-haiku-4-5", "golden_set": "g", "n": 50}
    with warehouse.engine.begin() as conn:
        conn.execute(
            store.calibrations.insert(),
            [
                {
                    **base,
                    "criterion": "accuracy",
                    "kappa": 0.41,
                    "passed": False,
                    "calibrated_at": END - 9 * DAY,
                    "run_id": 1,
                },
                {
                    **base,
                    "criterion": "accuracy",
                    "kappa": 0.78,
                    "passed": True,
                    "calibrated_at": END - 2 * DAY,
                    "run_id": 2,
                },
                {
                    **base,
                    "criterion": "tone",
                    "kappa": 0.66,
                    "passed": True,
                    "calibrated_at": END - 9 * DAY,
                    "run_id": 1,
                },
            ],
        )

    (version,) = Reader(warehouse, Settings()).rubric_versions()

    latest = {c["criterion"]: (c["kappa"], c["passed"]) for c in version.calibrations}
    assert latest == {"accuracy": (0.78, True), "tone": (0.66, True)}


def test_versions_without_a_calibrations_table_show_none(warehouse: Warehouse) -> None:
    (version,) = Reader(warehouse, Settings()).rubric_versions()

    assert (version.rubric_version, version.runs, version.scored, version.calibrations) == (VERSION, 1, 90, [])


@pytest.fixture
def source_only(tmp_path: Path) -> Warehouse:
    """A warehouse before the DAG's first run: the application's source table, none of judgeflow's."""
    url = f"sqlite:///{tmp_path / 'source-only.sqlite'}"
    seed_warehouse(create_engine(url), generate_responses(count=10, end=END, days=1, seed=1))
    return Warehouse.from_url(url, SourceConfig())


def test_a_warehouse_without_judge_tables_shows_no_runs_yet(source_only: Warehouse) -> None:
    from fastapi.testclient import TestClient

    from judgeflow.ui.app import build_app

    client = TestClient(build_app(lambda: Reader(source_only, Settings()), dependencies=[]))

    overview = client.get("/")
    assert overview.status_code == 200 and "no runs yet" in overview.text
    assert client.get("/rubrics").status_code == 200 and client.get("/segments").status_code == 200
    for route in ("trend", "regressions", "segments", "health", "rubrics"):
        response = client.get(f"/api/{route}")
        assert (response.status_code, response.json()) == (200, {"scope": None, "data": None}), route
    assert client.get("/charts/trend.png").status_code == 404  # "no data", not a 500
    assert not inspect(source_only.engine).has_table("judge_runs")  # the view only reads


def test_a_broken_warehouse_answers_503(warehouse: Warehouse) -> None:
    from fastapi.testclient import TestClient

    from judgeflow.ui.app import build_app

    reader = Reader(warehouse, Settings())
    client = TestClient(build_app(lambda: reader, dependencies=[]))
    assert client.get("/api/health").status_code == 200
    database = Path(str(warehouse.engine.url.database))
    warehouse.engine.dispose()
    for leftover in (database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        leftover.unlink(missing_ok=True)
    database.write_bytes(b"not a database " * 512)  # what a lost disk or a wrong file looks like to SQLite

    for route in ("/", "/api/health", "/rubrics"):
        response = client.get(route)
        assert response.status_code == 503, (route, response.text)
        assert response.json()["detail"].startswith("warehouse: could not")


def test_open_alerts_without_comparisons_in_the_window_are_listed(warehouse: Warehouse) -> None:
    """The rolling average never has a comparison row; a regression opened 40 days ago has none in the
    last ``regression_days`` (28): both are still open for on-call, so both are listed as open."""
    refresh_daily_scores(
        warehouse, rubric_name=RUBRIC, rubric_version=VERSION, start=(END - 3 * DAY).date(), end=END.date()
    )
    long_ago = END - 40 * DAY
    _comparisons(warehouse, "old", long_ago, [("overall", "topic=shipping", "regression", -0.8)])
    _comparisons(warehouse, "r1", END, [("tone", "", "regression", -0.5)])
    warehouse.alerts.save_open_regressions(
        RUBRIC,
        VERSION,
        {
            "rolling average": OpenRegression("rolling average", -0.3, END - 2 * DAY),
            "overall in topic=shipping": OpenRegression("overall in topic=shipping", -0.8, long_ago),
        },
    )
    reader = Reader(warehouse, Settings())

    found = {r.key: r for r in reader.regressions(reader.scope())}  # type: ignore[arg-type]

    assert {key: r.state for key, r in found.items()} == {
        "rolling average": "open",
        "overall in topic=shipping": "open",
        "tone": "open",  # found by the latest run, not announced yet
    }
    shipping, rolling = found["overall in topic=shipping"], found["rolling average"]
    assert (shipping.metric, shipping.segment, shipping.first_found) == ("overall", "topic=shipping", long_ago)
    assert (shipping.announced_difference, shipping.latest_difference) == (-0.8, None)
    assert (rolling.metric, rolling.segment, rolling.announced_difference) == ("rolling average", None, -0.3)


def test_an_open_rolling_average_shows_before_any_comparison(warehouse: Warehouse) -> None:
    warehouse.alerts.save_open_regressions(
        RUBRIC, VERSION, {"rolling average": OpenRegression("rolling average", -0.3, END)}
    )
    reader = Reader(warehouse, Settings())

    (only,) = reader.regressions(reader.scope())  # type: ignore[arg-type]

    assert (only.key, only.state, only.last_found) == ("rolling average", "open", END)


def test_a_judge_runs_table_from_before_suites_is_read_then_upgraded_in_place(warehouse: Warehouse) -> None:
    """Between deploying suites and their first run, the view reads the older table as it is; the
    first run's ``ensure_schema`` (migration 0002) adds ``suite`` and ``sample_rate``, and the old row
    keeps its data."""
    with warehouse.engine.begin() as conn:  # the table as a judgeflow before suites made it (revision 0001)
        conn.exec_driver_sql("ALTER TABLE judge_runs DROP COLUMN suite")
        conn.exec_driver_sql("ALTER TABLE judge_runs DROP COLUMN sample_rate")
        conn.exec_driver_sql("UPDATE judgeflow_alembic_version SET version_num = '0001'")
    reader = Reader(warehouse, Settings())
    scope = reader.scope()
    assert scope is not None

    (before,) = reader.run_health(scope)
    warehouse.ensure_schema()
    (after,) = Reader(warehouse, Settings()).run_health(scope)

    columns = {c["name"] for c in inspect(warehouse.engine).get_columns("judge_runs")}
    assert {"suite", "sample_rate"} <= columns
    assert before == after and (after.extracted, after.sample_rate) == (91, 1.0), "NULL reads as every response"
