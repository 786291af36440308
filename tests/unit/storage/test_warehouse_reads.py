"""The warehouse's reads of the source table and of past runs: reflecting the source (its columns,
segments and filters), the run totals, the spend so far, the scores frame and the rationales."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    create_mock_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from judgeflow.config import SourceConfig
from judgeflow.errors import ConfigError, WarehouseError
from judgeflow.quality.alert_state import OpenRegression
from judgeflow.quality.stats import OVERALL
from judgeflow.records import BatchRef, CriterionScore, ErrorKind
from judgeflow.rubric import load_rubric
from judgeflow.storage.daily_scores import refresh_daily_scores
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support import ROOT
from tests.support.postgres import throwaway_schema
from tests.unit.storage.test_warehouse import (
    DAY,
    END,
    HELPFULNESS,
    T0,
    add_source_rows,
    error,
    score,
    scored,
    staged_warehouse,
    warehouse,
)

__all__ = ["warehouse"]  # the fixture, imported for pytest

CONCISION = load_rubric(ROOT / "include" / "rubrics", "concision")
VERSION = HELPFULNESS.version_key


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --- the source table: reflected as configured, or refused naming the table and the columns ---


def _log_table(path: Path, *names: str) -> str:
    """A SQLite source table ``log_responses`` with these columns: the first an integer id, the second a
    timestamp, the others text."""
    url = f"sqlite:///{path}"
    types: list[Any] = [Integer, DateTime(timezone=True)]
    table = Table("log_responses", MetaData(), *[Column(n, (types[i:] or [Text])[0]) for i, n in enumerate(names)])
    engine = create_engine(url)
    table.metadata.create_all(engine)
    engine.dispose()
    return url


def test_a_source_table_without_configured_columns_is_refused_naming_them_and_the_columns_it_has(
    tmp_path: Path,
) -> None:
    url = _log_table(tmp_path / "w.sqlite", "id", "created_at", "question", "topic")
    with pytest.raises(ConfigError) as caught:
        Warehouse.from_url(url, SourceConfig(table="log_responses"))
    assert str(caught.value) == (
        "source: table 'log_responses' has no column(s) response, context "
        "(columns: id, created_at, question, topic); see source.*_column"
    )
    with pytest.raises(ConfigError) as caught:  # without a context column, only the response is missing
        Warehouse.from_url(url, SourceConfig(table="log_responses", context_column=None))
    assert str(caught.value) == (
        "source: table 'log_responses' has no column(s) response "
        "(columns: id, created_at, question, topic); see source.*_column"
    )


def test_a_source_table_is_read_with_its_configured_columns_whatever_their_names(tmp_path: Path) -> None:
    """Unusual names, a table without the default segment column: the names configured are the ones read."""
    url = _log_table(tmp_path / "w.sqlite", "rid", "ts", "prompt", "reply", "notes", "locale")
    config = SourceConfig(
        table="log_responses", id_column="rid", created_at_column="ts", question_column="prompt",
        response_column="reply", context_column="notes", segment_columns=("locale", "topic"),
    )  # fmt: skip
    warehouse = Warehouse.from_url(url, config)
    try:
        assert list(warehouse.source.c.keys()) == ["rid", "ts", "prompt", "reply", "notes", "locale"]
        assert warehouse.segment_names() == ["locale"], "topic is configured but not in this table"
        assert isinstance(warehouse.scores.c.response_id.type, Integer), "judgeflow's ids take the source's type"
    finally:
        warehouse.close()


def test_a_warehouse_whose_columns_cannot_be_read_is_a_warehouse_error_naming_the_source_table(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}")
    with pytest.raises(WarehouseError) as caught:
        Warehouse(engine, SourceConfig(table="log_responses"))
    assert str(caught.value).startswith(
        "warehouse: could not read the columns of the source table 'log_responses' (the role needs SELECT on it): "
        "(sqlite3.OperationalError) unable to open database file"
    )


def test_an_unsupported_warehouse_is_refused_naming_the_supported_ones() -> None:
    engine = create_mock_engine("mssql://", lambda *_args, **_kwargs: None)
    with pytest.raises(ConfigError) as caught:
        Warehouse(cast(Engine, engine), SourceConfig())
    assert str(caught.value) == (
        "warehouse: dialect 'mssql' unsupported "
        "(bigquery, databricks, duckdb, mariadb, mysql, postgresql, redshift, snowflake, sqlite)"
    )


def test_the_warehouse_s_stores_use_its_engine_and_its_tables(warehouse: Warehouse) -> None:
    """``Warehouse.batches`` and ``Warehouse.alerts`` read and write judgeflow's own tables."""
    ref = BatchRef("dag/run", 0, 2, "1", "2")
    warehouse.batches.record(ref=ref, part=0, anthropic_batch_id="msgbatch_1", requests=2, created_at=END)
    assert warehouse.batches.for_task(ref) == [
        {
            "run_key": ref.batches_key,
            "batch_index": 0,
            "part": 0,
            "anthropic_batch_id": "msgbatch_1",
            "requests": 2,
            "status": "submitted",
            "created_at": END,
        }
    ]
    summary = dict.fromkeys(("extracted", "scored", "from_cache", "errors", "unaccounted"), 0)
    summary |= {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "details": {}}
    warehouse.record_run(
        {
            "run_key": "dag/run", "dag_id": "dag", "dag_run_id": "run", "rubric_name": "helpfulness",
            "rubric_version": VERSION, "interval_start": T0, "interval_end": END, "finished_at": END, **summary,
        }
    )  # fmt: skip
    assert warehouse.alerts.newest_interval_end("dag", "helpfulness", VERSION) == END
    recovered = OpenRegression("overall", -0.5, opened_at=T0)  # found down the day before T0
    warehouse.alerts.save_open_regressions("helpfulness", VERSION, {}, closed={"overall": recovered}, closed_at=END)
    assert warehouse.alerts.baseline_exclusions("helpfulness", VERSION) == ([(T0 - DAY, T0)], None)


# --- a source query: its columns carry the configured names and types ---


def _source_query_warehouse(tmp_path: Path, config: SourceConfig) -> Warehouse:
    url = f"sqlite:///{tmp_path / 'q.sqlite'}"
    seed_warehouse(create_engine(url), generate_responses(count=3, end=END, seed=5))
    warehouse = Warehouse.from_url(url, config)
    warehouse.ensure_schema()
    return warehouse


QUERY = (
    "SELECT X.id AS rid, X.created_at AS ts, X.question AS q, X.response AS a, X.context AS ctx FROM app_responses AS X"
)
QUERY_NAMES = {"id_column": "rid", "created_at_column": "ts", "question_column": "q", "response_column": "a"}


@pytest.mark.parametrize(
    ("id_type", "column_type"), [("integer", "INTEGER"), ("string", "VARCHAR(255)")]
)  # fmt: skip
def test_a_source_query_s_id_type_is_the_type_of_judgeflow_s_response_ids(
    tmp_path: Path, id_type: str, column_type: str
) -> None:
    """A query cannot be reflected: ``source.id_type`` says what its ids are, and judgeflow's tables are
    made with that type (a text id in an integer column, or the reverse, would not join)."""
    config = SourceConfig(query=QUERY, id_type=id_type, context_column=None, segment_columns=(), **QUERY_NAMES)
    warehouse = _source_query_warehouse(tmp_path, config)
    try:
        found = inspect(warehouse.engine)
        for table in ("judge_run_items", "judge_scores", "judge_criterion_scores", "judge_errors"):
            (response_id,) = [c for c in found.get_columns(table) if c["name"] == "response_id"]
            assert str(response_id["type"]) == column_type, table
    finally:
        warehouse.close()


def test_a_source_query_is_run_as_written_less_a_final_semicolon_with_its_context_and_segments(
    tmp_path: Path,
) -> None:
    """The query's own text ends with ``X`` (an alias): only the trailing ``;`` and blanks are taken off."""
    config = SourceConfig(
        query=QUERY.replace(" FROM", ", X.topic AS area FROM") + " ;\n", context_column="ctx",
        segment_columns=("area",), **QUERY_NAMES,
    )  # fmt: skip
    warehouse = _source_query_warehouse(tmp_path, config)
    try:
        assert list(warehouse.source.c.keys()) == ["rid", "ts", "q", "a", "ctx", "area"]
        with warehouse.engine.connect() as conn:
            read = conn.execute(select(warehouse.source).order_by(warehouse.source.c.rid)).all()
            table = conn.execute(text("SELECT id, created_at, question, response, context, topic FROM app_responses"))
            expected = sorted(table.all())
        assert [(r.rid, r.q, r.a, r.ctx, r.area) for r in read] == [(r[0], *r[2:]) for r in expected]
        assert [r.ts for r in read] == [dt.datetime.fromisoformat(r[1]) for r in expected]
        assert warehouse.segment_names() == ["area"]
        assert warehouse.count_created(T0, END) == 3
    finally:
        warehouse.close()


def test_a_source_query_that_does_not_run_is_refused_with_the_database_s_first_line(warehouse: Warehouse) -> None:
    config = SourceConfig(query="SELECT id FROM no_such_table", context_column=None, segment_columns=())
    url = _url(warehouse.engine)
    with pytest.raises(ConfigError) as caught:
        Warehouse.from_url(url, config)
    assert str(caught.value) == (
        "source.query: the query does not give the columns ['id', 'created_at', 'question', 'response'] "
        f"({url}): no such table: no_such_table"
    )


@pytest.mark.parametrize(
    "raised",
    [
        pytest.param(DBAPIError("SELECT ...", None, None), id="no-driver-error"),  # type: ignore[arg-type]
        pytest.param(DBAPIError("SELECT ...", None, Exception("")), id="a-driver-error-without-a-message"),
    ],
)
def test_a_source_query_refused_without_the_driver_s_words_quotes_sqlalchemy_s_message(
    warehouse: Warehouse, raised: DBAPIError
) -> None:
    """A ``DBAPIError`` may come without the driver's exception (``orig``), raised by an event or a
    dialect, or with a driver exception that has no message (that raised IndexError once): its own
    message is the reason then, in the ConfigError naming the columns."""
    engine = create_engine(_url(warehouse.engine))

    @event.listens_for(engine, "before_cursor_execute")
    def refuse(*_args: Any) -> None:
        raise raised

    config = SourceConfig(query="SELECT 1", context_column=None, segment_columns=())
    try:
        with pytest.raises(ConfigError) as caught:
            Warehouse(engine, config)
        assert str(caught.value) == (
            "source.query: the query does not give the columns ['id', 'created_at', 'question', 'response'] "
            f"({_url(engine)}): {raised}"
        )
    finally:
        engine.dispose()


# --- PostgreSQL: the session's time zone, ids arriving as text, and no password in the messages ---


@pytest.fixture(scope="module")
def pg_schema() -> Iterator[str]:
    """A schema of the local PostgreSQL with judgeflow's tables and the sample source table (ids 1-4)."""
    with throwaway_schema("jf_reads") as name:
        engine = _pg_engine(name)
        seed_warehouse(engine, generate_responses(count=4, end=END, seed=5))
        Warehouse(engine, SourceConfig()).upgrade_schema()
        engine.dispose()
        yield name


def _pg_engine(schema: str, *, timezone: str = "UTC", password: str = "") -> Engine:
    """``password``: the server trusts local connections, so any password connects (and must not be shown)."""
    user = f"postgres:{password}" if password else "postgres"
    options = f"-csearch_path%3D{schema}%20-ctimezone%3D{timezone.replace('/', '%2F')}"
    return create_engine(f"postgresql+psycopg://{user}@127.0.0.1:5432/test?options={options}")


@pytest.mark.postgres
def test_a_source_query_s_created_column_is_read_in_utc_whatever_the_session_s_time_zone(pg_schema: str) -> None:
    """The query's created column is a timestamp with a time zone: an interval's bounds are instants, and
    the daily rollup's day is the UTC day, also in a New York session (where 02:00 UTC is the evening
    before: read as a naive timestamp, both responses would fall on the 18th)."""
    engine = _pg_engine(pg_schema, timezone="America/New_York")
    created = {1: T0 + dt.timedelta(hours=2), 2: T0 - dt.timedelta(seconds=1), 3: END, 4: END}
    with engine.begin() as conn:
        for rid, at in created.items():
            conn.execute(text("UPDATE app_responses SET created_at = :at WHERE id = :id"), {"at": at, "id": rid})
    warehouse = Warehouse(engine, SourceConfig(query="SELECT * FROM app_responses"))
    try:
        assert (warehouse.count_created(T0, END), warehouse.count_created(END, END + DAY)) == (1, 2)
        warehouse.write([dataclasses.replace(scored(i), rubric_version="tz") for i in (1, 2)], [])
        days = (T0 - DAY).date(), T0.date()
        refresh_daily_scores(warehouse, rubric_name="helpfulness", rubric_version="tz", start=days[0], end=END.date())
        table = warehouse.daily_scores
        query = select(table.c.day, table.c.n).where(table.c.rubric_version == "tz", table.c.metric == OVERALL)
        with engine.connect() as conn:
            assert sorted(conn.execute(query).all()) == [(days[0], 1), (days[1], 1)]
    finally:
        warehouse.close()


@pytest.mark.postgres
def test_rationales_take_ids_given_as_text_for_an_integer_id_column(pg_schema: str) -> None:
    """Alert examples carry ids through JSON; PostgreSQL will not compare ``integer = varchar``."""
    warehouse = Warehouse(_pg_engine(pg_schema), SourceConfig())
    try:
        warehouse.write([scored(1, accuracy=5), scored(2)], [])
        got = warehouse.rationales(["1", "3"], rubric_name="helpfulness", rubric_version=VERSION)
        names = HELPFULNESS.criterion_names
        assert got == {"1": "; ".join(f"{n}: {n} is {5 if n == 'accuracy' else 3}" for n in names)}
    finally:
        warehouse.close()


@pytest.mark.postgres
def test_a_missing_source_is_named_with_the_warehouse_s_address_but_not_its_password(pg_schema: str) -> None:
    engine = _pg_engine(pg_schema, password="s3cret")
    shown = engine.url.render_as_string(hide_password=True)
    assert "s3cret" not in shown and "***" in shown
    try:
        with pytest.raises(ConfigError) as caught:
            Warehouse(engine, SourceConfig(table="no_such_table"))
        assert str(caught.value) == f"source.table: table 'no_such_table' not found in the warehouse ({shown})"
        with pytest.raises(ConfigError) as caught:
            Warehouse(engine, SourceConfig(query="SELECT * FROM no_such_table", segment_columns=()))
        assert str(caught.value) == (
            "source.query: the query does not give the columns "
            f"['id', 'created_at', 'question', 'response', 'context'] ({shown}): "
            'relation "no_such_table" does not exist'
        )
    finally:
        engine.dispose()


# --- run totals: what the run summary and ``judge_runs.unaccounted`` are built from ---


def test_run_totals_of_a_run_with_nothing_staged_or_nothing_judged_are_zeros(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 3, batch_size=10)
    zeros = dict.fromkeys(("scored", "from_cache", "errors", "left_for_budget", "malformed"), 0)
    zeros |= dict.fromkeys(("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"), 0)
    try:
        nothing = warehouse.run_totals("other/run", "run", "helpfulness", VERSION)
        assert nothing == {"extracted": 0, **zeros, "cost_usd": 0.0, "mean": None, "unaccounted": 0}
        unjudged = warehouse.run_totals("dag/run", "run", "helpfulness", VERSION)
        assert unjudged == {"extracted": 3, **zeros, "cost_usd": 0.0, "mean": None, "unaccounted": 3}
        assert isinstance(nothing["cost_usd"], float) and isinstance(nothing["left_for_budget"], int)
    finally:
        warehouse.close()


def test_run_totals_count_errors_of_this_rubric_version_only_and_round_the_mean_to_four_places(
    tmp_path: Path,
) -> None:
    warehouse = staged_warehouse(tmp_path, 5, batch_size=10)
    try:
        overalls = {1: 1.0, 2: 2.0, 3: 2.0}  # mean 5/3
        warehouse.write([dataclasses.replace(scored(i), overall=v) for i, v in overalls.items()], [])
        warehouse.write([], [error(4, ErrorKind.MALFORMED_VERDICT, version="0+older"), error(5, version="0+older")])
        totals = warehouse.run_totals("dag/run", "run", "helpfulness", VERSION)
        assert totals["mean"] == 1.6667
        assert (totals["extracted"], totals["scored"], totals["errors"], totals["malformed"]) == (5, 3, 0, 0)
        assert totals["unaccounted"] == 2, "errors under another version do not account for this one"
    finally:
        warehouse.close()


def test_run_totals_since_the_interval_leave_out_what_failed_for_good_before_this_run(tmp_path: Path) -> None:
    """A permanent error under this version (an earlier run's) means the response is not wanted again;
    the same error under an older version does not."""
    warehouse = staged_warehouse(tmp_path, 4, batch_size=10)
    try:
        earlier = [dataclasses.replace(error(i, ErrorKind.INVALID_INPUT), dag_run_id="earlier") for i in (1, 2)]
        warehouse.write([], [earlier[0], dataclasses.replace(earlier[1], rubric_version="0+older")])
        warehouse.write([scored(3)], [])
        totals = warehouse.run_totals("dag/run", "run", "helpfulness", VERSION, since=T0)
        assert (totals["extracted"], totals["scored"], totals["errors"], totals["unaccounted"]) == (3, 1, 0, 2)
    finally:
        warehouse.close()


def test_run_totals_that_cannot_be_read_name_what_was_being_done(warehouse: Warehouse) -> None:
    with warehouse.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE judge_run_items")
    with pytest.raises(WarehouseError, match=r"^warehouse: could not read run totals: "):
        warehouse.run_totals("dag/run", "run", "helpfulness", VERSION)


# --- rationales and the scores frame ---


def test_rationales_are_only_those_asked_for_and_an_id_not_of_the_id_type_finds_nothing(
    warehouse: Warehouse,
) -> None:
    warehouse.write([scored(1), scored(2)], [])
    assert set(warehouse.rationales(["1"], rubric_name="helpfulness", rubric_version=VERSION)) == {"1"}
    assert set(warehouse.rationales(["x", "2"], rubric_name="helpfulness", rubric_version=VERSION)) == {"2"}


def test_scores_frame_is_this_rubric_version_s_scores_from_the_window_s_start(warehouse: Warehouse) -> None:
    """Response 60 is created at the window's start (in it); response 1 is also scored by concision under
    the same version string and by an older helpfulness version: neither shows; response 2's score has
    no criterion rows: its row stays, its criteria empty."""
    add_source_rows(warehouse, (60, T0))
    warehouse.write([scored(1, accuracy=5), scored(60, tone=2)], [])
    concision = {name: CriterionScore(1, "short") for name in CONCISION.criterion_names}
    warehouse.write([dataclasses.replace(score(1, CONCISION, VERSION, "run"), criteria=concision, overall=1.0)], [])
    warehouse.write([dataclasses.replace(scored(1, accuracy=1), rubric_version="0+older", overall=1.0)], [])
    warehouse.write([dataclasses.replace(scored(2), criteria={}, overall=4.0)], [])
    frame = warehouse.scores_frame(
        rubric_name="helpfulness", rubric_version=VERSION, criteria=[*HELPFULNESS.criterion_names, "missing"],
        start=T0, end=END,
    )  # fmt: skip
    frame = frame.sort_values("response_id").reset_index(drop=True)
    names = HELPFULNESS.criterion_names
    assert list(frame.columns) == ["response_id", "created_at", "overall", "topic", *sorted(names), "missing"]
    assert frame["response_id"].tolist() == [1, 2, 60]
    assert frame["overall"].tolist() == [
        HELPFULNESS.overall({**dict.fromkeys(names, 3), "accuracy": 5}),
        4.0,
        HELPFULNESS.overall({**dict.fromkeys(names, 3), "tone": 2}),
    ]
    assert frame["accuracy"].tolist()[::2] == [5.0, 3.0] and frame["tone"].tolist()[::2] == [3.0, 2.0]
    assert frame.loc[1, list(names)].isna().all()
    assert frame["missing"].dtype == float and frame["missing"].isna().all()
    empty = warehouse.scores_frame(
        rubric_name="helpfulness", rubric_version="none", criteria=["tone"], start=T0, end=END
    )
    assert empty["tone"].dtype == float
