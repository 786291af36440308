"""Every statement judgeflow sends, compiled by each warehouse's own SQLAlchemy dialect and parsed by sqlglot.

No server for BigQuery, Databricks or Redshift can run here, so their level is *compiled*: the real
code paths (staging, keyset reads, upserts, totals, the daily rollup, estimates, version pairs,
alert state, Message Batches, the UI view's reads) run against a recording connection that compiles each
statement with the dialect (``sqlalchemy-bigquery``, ``databricks-sqlalchemy``, ``sqlalchemy-redshift``),
and sqlglot must parse the SQL as that dialect. The dialect-specific choices are checked by name:
MERGE for upserts, integer batch numbers, the UTC day, no indexes where the warehouse has none.
Snowflake, MySQL and DuckDB run for real in ``tests/integration/test_warehouses.py``; they are
compiled here too, as a cheap first line.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlglot
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects import registry
from sqlalchemy.sql.elements import ClauseElement

from judgeflow.config import BatchingConfig, SamplingConfig, Settings, SourceConfig
from judgeflow.records import BatchRef, CriterionScore, ErrorKind, ErrorRecord, ScoreRecord, Usage
from judgeflow.rubric import load_rubric
from judgeflow.storage import daily_scores, estimates, migrate, versions
from judgeflow.storage.alert_store import AlertStore
from judgeflow.storage.calibrations import CalibrationStore
from judgeflow.storage.message_batches import MessageBatchStore
from judgeflow.storage.sampling import SampleRule
from judgeflow.storage.schema import alert_tables, daily_scores_table, judge_tables, message_batches_table
from judgeflow.storage.view_reads import Reader, Scope
from judgeflow.storage.warehouse import Warehouse
from tests.support import ROOT

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SQLGLOT = {"bigquery": "bigquery", "databricks": "databricks", "redshift": "redshift", "snowflake": "snowflake",
           "mysql": "mysql", "duckdb": "duckdb"}  # fmt: skip


class _Row(tuple):  # type: ignore[type-arg]
    """A row of zeros shaped like the statement's columns."""

    def __new__(cls, names: list[str]) -> _Row:
        row = super().__new__(cls, [0] * len(names))
        row.names = names  # type: ignore[attr-defined]
        return row

    def _asdict(self) -> dict[str, Any]:
        return dict.fromkeys(self.names, 0)  # type: ignore[attr-defined]


class _Result:
    def __init__(self, statement: Any) -> None:
        columns = getattr(statement, "selected_columns", None)
        self.names = [c.key or f"c{i}" for i, c in enumerate(columns)] if columns is not None else []
        self.inserted_primary_key = (1,)

    def one(self) -> _Row:
        return _Row(self.names)

    def scalar_one(self) -> int:
        return 10  # "ten responses": staging goes on to its INSERT ... SELECT

    def all(self) -> list[Any]:
        return []

    def first(self) -> None:
        return None

    def scalar(self) -> None:
        return None

    def mappings(self) -> _Result:
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter([])


class Recorder:
    """Stands in for an engine and its connections: compiles every statement and keeps the SQL."""

    def __init__(self, dialect_name: str) -> None:
        self.dialect = registry.load(dialect_name)()
        self.statements: list[str] = []

    def execute(self, statement: ClauseElement, parameters: Any = None) -> _Result:
        self.statements.append(str(statement.compile(dialect=self.dialect)))
        return _Result(statement)

    @contextmanager
    def begin(self) -> Iterator[Recorder]:
        yield self

    connect = begin

    def dispose(self) -> None:
        pass


def _warehouse(recorder: Recorder) -> Warehouse:
    """A :class:`Warehouse` over the recorder, with the source table as :class:`SourceConfig` names it."""
    warehouse = Warehouse.__new__(Warehouse)
    warehouse.engine = recorder  # type: ignore[assignment]
    warehouse.source_config = SourceConfig(segment_columns=["topic"])
    warehouse.metadata = MetaData()
    warehouse.source = Table(
        "app_responses",
        warehouse.metadata,
        Column("id", String(64)),
        Column("created_at", DateTime(timezone=True)),
        Column("question", Text),
        Column("context", Text),
        Column("response", Text),
        Column("topic", String(40)),
    )
    tables = judge_tables(warehouse.metadata, String(64))
    warehouse.items, warehouse.scores, warehouse.criterion_scores, warehouse.errors, warehouse.runs = tables
    warehouse.message_batches = message_batches_table(warehouse.metadata)
    warehouse.comparisons, warehouse.alert_state = alert_tables(warehouse.metadata)
    warehouse.daily_scores = daily_scores_table(warehouse.metadata)
    warehouse.batches = MessageBatchStore(recorder, warehouse.message_batches)  # type: ignore[arg-type]
    warehouse.alerts = AlertStore(recorder, warehouse.comparisons, warehouse.alert_state)  # type: ignore[arg-type]
    return warehouse


def a_score(response_id: str) -> ScoreRecord:
    criteria = {"accuracy": CriterionScore(4, "fine")}
    return ScoreRecord(
        response_id, "r", "v", 4.0, criteria, "m", Usage(10, 5), 0.001, 30, False, False, "run", T0
    )  # fmt: skip


def an_error(response_id: str) -> ErrorRecord:
    return ErrorRecord(response_id, "r", "v", ErrorKind.JUDGE_ERROR, "timeout", 3, "run", T0, raw_reply="x" * 20_000)


def _every_statement(dialect_name: str) -> list[str]:
    """Run each SQL path of the storage layer once over a recorder; returns the compiled statements."""
    recorder = Recorder(dialect_name)
    wh = _warehouse(recorder)
    rubric = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
    ref = BatchRef("dag/run", 0, 10, "a", "z")
    end = T0 + dt.timedelta(days=1)
    wh.stage_run(run_key="dag/run", rubrics=[rubric], start=T0, end=end, rescore=False, batching=BatchingConfig())
    sample = SampleRule(SamplingConfig(rate=0.5, by="topic", min_per_segment=2), salt="suite")
    wh.stage_run(
        run_key="dag/run", rubrics=[rubric], start=T0, end=end, rescore=False, batching=BatchingConfig(), sample=sample
    )
    wh.plan_batches("dag/run")
    list(wh.read_batch(ref, rubric_name="r", rubric_version="v", dag_run_id="run", rescore=True, skip_errored=True))
    list(wh.read_batch(ref, rubric_name="r", rubric_version="v", dag_run_id="run", rescore=False, since=T0))
    wh.write([a_score("a"), a_score("b")], [an_error("c")])
    wh.run_totals("dag/run", "run", "r", "v")
    wh.run_totals("dag/run", "run", "r", "v", since=T0)
    wh.spent_usd(dag_run_id="run", day_start=T0, day_end=end, rubric_names=["r"])
    wh.count_created(T0, end)
    wh.rationales(["a"], rubric_name="r", rubric_version="v")
    wh.null_ids(T0, end)
    wh.record_run({c.name: None for c in wh.runs.columns} | {"run_key": "dag/run", "details": {"a": 1}})
    wh.scores_frame(rubric_name="r", rubric_version="v", criteria=["accuracy"], start=T0, end=end)
    wh.discard_run_items("dag/run")
    daily_scores.refresh_daily_scores(wh, rubric_name="r", rubric_version="v", start=T0.date(), end=end.date())
    estimates.staged_sizes(wh, "dag/run", max_response_chars=100)
    estimates.mean_output_tokens(wh, "r")
    versions.known_versions(wh, "r")
    versions.paired_scores(wh, "r", "v1", "v2")
    wh.alerts.record_comparisons(
        run_key="dag/run", rubric_name="r", rubric_version="v", rows=[{"metric": "overall", "status": "ok",
                                                                       "baseline_n": 1, "current_n": 1}]
    )  # fmt: skip
    wh.alerts.open_regressions("r", "v")
    wh.batches.record(ref=ref, part=0, anthropic_batch_id="msgbatch_1", requests=3, created_at=T0)
    wh.batches.for_task(ref)
    wh.batches.set_status("msgbatch_1", "collected")
    store = CalibrationStore(recorder)  # type: ignore[arg-type]
    calibration = {"rubric_name": "r", "rubric_version": "v", "model": "m", "golden_set": "g", "endpoint": "e"}
    store.latest_run(**calibration)
    store.criterion_rows(1)
    _view_reads(wh)
    return recorder.statements


def _view_reads(wh: Warehouse) -> None:
    """Every read of the UI view (its tables taken as present: the recorder has no catalog)."""
    reader = Reader(wh, Settings())
    reader._schema_ready = True
    reader._calibrations_checked = (True, 0.0)
    reader._sample_rate_checked = (True, 0.0)
    scope = Scope("r", "v", T0.date())
    reader.scope("r")
    reader.trend(scope)
    reader.weekly_counts(scope)
    reader.regressions(scope)
    reader.segment_rows(scope)
    reader.lowest_responses(scope)
    reader.run_health(scope)
    reader.rubric_versions()
    reader.latest_calibrations()


def _parse(sql: str, dialect_name: str) -> None:
    """sqlglot must read the statement as the warehouse's SQL (bind parameters become placeholders)."""
    normalised = re.sub(r"%\(([^):]+)(:[^)]*)?\)s|%s|\?|:\w+|\$\d+", "NULL", sql)
    sqlglot.parse_one(normalised, read=SQLGLOT[dialect_name], error_level=sqlglot.ErrorLevel.RAISE)


COMPILED_ONLY = ["bigquery", "databricks", "redshift"]
ALSO_RUN = ["snowflake", "mysql", "duckdb"]


@pytest.mark.parametrize("dialect_name", COMPILED_ONLY + ALSO_RUN)
def test_every_statement_parses_as_the_warehouse_sql(dialect_name: str) -> None:
    statements = _every_statement(dialect_name)
    assert len(statements) >= 35
    for sql in statements:
        try:
            _parse(sql, dialect_name)
        except sqlglot.errors.ParseError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{dialect_name}: sqlglot cannot parse\n{sql}\n{exc}")


@pytest.mark.parametrize("dialect_name", ["snowflake", "bigquery", "databricks", "redshift"])
def test_upserts_are_merge_with_one_source_row_per_key(dialect_name: str) -> None:
    merges = [s for s in _every_statement(dialect_name) if s.startswith("MERGE INTO")]
    assert {re.match(r"MERGE INTO (\S+)", s).group(1).strip('`"') for s in merges} >= {  # type: ignore[union-attr]
        "judge_scores",
        "judge_criterion_scores",
        "judge_errors",
        "judge_runs",
        "judge_message_batches",
    }
    scores = next(s for s in merges if "judge_scores" in s.split("USING")[0])
    assert scores.count("UNION ALL") == 1  # two score rows, one MERGE
    assert "WHEN MATCHED THEN UPDATE SET" in scores and "WHEN NOT MATCHED THEN INSERT" in scores


@pytest.mark.parametrize(
    ("dialect_name", "batch_number", "day"),
    [
        pytest.param("bigquery", "CAST(floor(", "date(", id="bigquery"),
        pytest.param("databricks", "CAST(floor(", "CAST(app_responses.created_at AS DATE)", id="databricks"),
        pytest.param("redshift", ") / %(", "convert_timezone(", id="redshift"),
        pytest.param("snowflake", "CAST(floor(", "convert_timezone(", id="snowflake"),
        pytest.param("mysql", "FLOOR((row_number", "date(", id="mysql"),
        pytest.param("duckdb", "CAST(floor(", "CAST(app_responses.created_at AS DATE)", id="duckdb"),
    ],
)
def test_batch_numbers_are_integers_and_days_are_utc(dialect_name: str, batch_number: str, day: str) -> None:
    statements = _every_statement(dialect_name)
    staging = next(s for s in statements if s.startswith("INSERT INTO") and "judge_run_items" in s.split("(")[0])
    assert "row_number() OVER" in staging and batch_number in staging
    rollup = next(s for s in statements if s.startswith("INSERT INTO") and "judge_daily_scores" in s.split("(")[0])
    assert day in rollup


@pytest.mark.parametrize("dialect_name", COMPILED_ONLY + ALSO_RUN)
def test_the_ddl_parses_and_has_indexes_only_where_the_warehouse_does(dialect_name: str) -> None:
    ddl = migrate.sql(dialect_name, id_type=Integer())
    statements = [s.strip() for s in ddl.split(";") if s.strip() and not s.strip().startswith("--")]
    assert any("judgeflow_alembic_version" in s for s in statements)
    assert ("CREATE INDEX" in ddl) == (dialect_name in ("mysql", "duckdb"))
    for sql in statements:
        body = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
        sqlglot.parse_one(body, read=SQLGLOT[dialect_name], error_level=sqlglot.ErrorLevel.RAISE)
