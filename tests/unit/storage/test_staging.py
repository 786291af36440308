"""Staging a run and reading its batches back: what ``Warehouse.stage_run``, ``plan_batches``,
``read_batch`` and ``write`` promise (every wanted response staged once, batches cut as configured,
a retried batch not judged again, writes idempotent)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text, create_engine, select, text

from judgeflow.config import BatchingConfig, SamplingConfig, SourceConfig
from judgeflow.errors import ConfigError, WarehouseError
from judgeflow.records import CriterionScore, ErrorKind, ErrorRecord, ScoreRecord
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.storage import warehouse as warehouse_module
from judgeflow.storage.sampling import SampleRule, scratch_keys, unit_hash
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.sample_data import seed_warehouse
from tests.support import ROOT
from tests.support.postgres import schema_engine, throwaway_schema
from tests.unit.storage.test_warehouse import DAY, END, HELPFULNESS, T0, score

CONCISION = load_rubric(ROOT / "include" / "rubrics", "concision")
HOUR = dt.timedelta(hours=1)
RUN = "dag/run"


def source_rows(rows: Iterable[tuple[int, dt.datetime]]) -> Iterator[dict[str, Any]]:
    for rid, created in rows:
        yield {"id": rid, "created_at": created, "question": f"q{rid}", "context": None, "response": f"a{rid}"}


def sqlite_warehouse(tmp_path: Path, rows: Iterable[tuple[int, dt.datetime]]) -> Warehouse:
    url = f"sqlite:///{tmp_path / 'staging.sqlite'}"
    engine = create_engine(url)
    seed_warehouse(engine, source_rows(rows))
    engine.dispose()
    warehouse = Warehouse.from_url(url, SourceConfig())
    warehouse.ensure_schema()
    return warehouse


@pytest.fixture
def make_warehouse(tmp_path: Path) -> Iterator[Callable[[Iterable[tuple[int, dt.datetime]]], Warehouse]]:
    opened: list[Warehouse] = []

    def make(rows: Iterable[tuple[int, dt.datetime]]) -> Warehouse:
        opened.append(sqlite_warehouse(tmp_path, rows))
        return opened[-1]

    yield make
    for warehouse in opened:
        warehouse.close()


def stage(
    warehouse: Warehouse,
    *,
    rubrics: Iterable[Rubric] = (HELPFULNESS,),
    start: dt.datetime = T0,
    end: dt.datetime = END,
    rescore: bool = False,
    run_key: str = RUN,
    **batching: Any,
) -> int:
    options = {k: batching.pop(k) for k in ("limit", "backlog", "sample") if k in batching}
    return warehouse.stage_run(
        run_key=run_key,
        rubrics=list(rubrics),
        start=start,
        end=end,
        rescore=rescore,
        batching=BatchingConfig(**{"batch_size": 100, **batching}),
        **options,
    )


def staged_items(warehouse: Warehouse, run_key: str = RUN) -> list[tuple[Any, int]]:
    """``(response_id, batch_index)`` of every row staged under ``run_key``, by id."""
    items = warehouse.items
    query = select(items.c.response_id, items.c.batch_index).where(items.c.run_key == run_key)
    with warehouse.engine.connect() as conn:
        return sorted((row[0], row[1]) for row in conn.execute(query))


def staged_ids(warehouse: Warehouse, run_key: str = RUN) -> list[Any]:
    return [rid for rid, _ in staged_items(warehouse, run_key)]


def sizes(warehouse: Warehouse, run_key: str = RUN) -> list[tuple[int, int]]:
    return [(ref.batch_index, ref.size) for ref in warehouse.plan_batches(run_key)]


def failed(rid: int, *, retryable: bool, rubric: str = "helpfulness", version: str = "") -> ErrorRecord:
    kind = ErrorKind.JUDGE_ERROR if retryable else ErrorKind.INVALID_INPUT
    return ErrorRecord(rid, rubric, version or HELPFULNESS.version_key, kind, "why", 1, "earlier", END)


def read(warehouse: Warehouse, **options: Any) -> list[Any]:
    """Every id the run's batches hand to helpfulness, in the order read."""
    opts = {"rubric_name": "helpfulness", "rubric_version": HELPFULNESS.version_key, "dag_run_id": "run"}
    opts |= {"rescore": False, **options}
    return [
        item.response_id
        for ref in warehouse.plan_batches(RUN)
        for page in warehouse.read_batch(ref, **opts)
        for item in page
    ]


# --- which responses a run stages -----------------------------------------------------------------

BACKLOG_START = END - 2 * DAY  # backlog_days=2
WINDOW_ROWS = [
    (1, T0),  # the interval's first instant, scored under an older version: in
    (2, END - dt.timedelta(seconds=1)),  # the interval's last second: in
    (3, END),  # the next interval's first instant: out
    (4, BACKLOG_START),  # the oldest instant of the backlog, never judged: in
    (5, BACKLOG_START - dt.timedelta(seconds=1)),  # one second older than the backlog: out
    (6, T0 - HOUR),  # late, scored under an older version of the rubric: out (no re-judging the past)
    (7, T0 - HOUR),  # late, scored under an older version, a retryable error under this one: in
    (8, T0 - HOUR),  # late, scored under an older version, a retryable error under another one: out
    (9, T0 - HOUR),  # late, scored under an older version, concision's retryable error: out
    (10, T0 + HOUR),  # concision failed it for good under a same-named version: still helpfulness's
    (11, END - 400 * DAY),  # long ago, never judged: only without a backlog limit
]


def judged_before(warehouse: Warehouse) -> None:
    older = [score(rid, HELPFULNESS, "0+older", "earlier") for rid in (1, 6, 7, 8, 9)]
    warehouse.write(older, [])
    warehouse.write(
        [],
        [
            failed(7, retryable=True),
            failed(8, retryable=True, version="0+other"),
            failed(9, retryable=True, rubric="concision"),
            failed(10, retryable=False, rubric="concision"),
        ],
    )


def test_a_run_stages_its_interval_and_the_late_responses_the_rubric_never_judged(make_warehouse: Any) -> None:
    """The interval is half-open; the backlog reaches back ``backlog_days`` from the interval's end
    (inclusive) and takes what the rubric never scored under any version, or failed retryably under
    this one; another rubric's or another version's errors are not this one's."""
    warehouse = make_warehouse(WINDOW_ROWS)
    judged_before(warehouse)

    assert stage(warehouse, backlog_days=2) == 5
    assert staged_ids(warehouse) == [1, 2, 4, 7, 10]
    assert stage(warehouse, backlog_days=None) == 7, "no backlog limit: as far back as the source goes"
    assert staged_ids(warehouse) == [1, 2, 4, 5, 7, 10, 11]
    assert stage(warehouse, backlog_days=2, backlog=False) == 3, "backlog off: the interval only"
    assert staged_ids(warehouse) == [1, 2, 10]
    assert stage(warehouse, backlog_days=None, backlog=False) == 3
    assert staged_ids(warehouse) == [1, 2, 10]
    assert stage(warehouse, rescore=True) == 3, "a rescore: every response of the interval, judged or not"
    assert staged_ids(warehouse) == [1, 2, 10]


def test_the_backlog_ends_before_the_interval_starts(make_warehouse: Any) -> None:
    """Late means created before the interval's start: with an empty interval (start = end) a
    response created at that instant is the next interval's, not this run's backlog."""
    warehouse = make_warehouse([(1, T0), (2, T0 - HOUR), (3, T0 - 400 * DAY)])  # none judged yet

    stage(warehouse, start=T0, end=T0, backlog_days=2)
    assert staged_ids(warehouse) == [2]
    stage(warehouse, start=T0, end=T0, backlog_days=None)
    assert staged_ids(warehouse) == [2, 3]
    stage(warehouse, start=T0, end=END, backlog_days=None)
    assert staged_ids(warehouse) == [1, 2, 3]


def test_a_read_with_since_hands_each_rubric_what_its_staging_picked(make_warehouse: Any) -> None:
    """What helpfulness staged, it reads (``since`` = the interval's start): the interval's first
    instant counts as the interval, a late retryable error under this version is owed, and
    concision's permanent error is not helpfulness's."""
    warehouse = make_warehouse(WINDOW_ROWS)
    judged_before(warehouse)
    stage(warehouse, backlog_days=2)

    assert read(warehouse, since=T0) == [1, 2, 4, 7, 10]
    assert read(warehouse, since=T0, skip_errored=True) == [1, 2, 4, 7, 10], "the errors are an earlier run's"


def test_responses_without_an_id_are_not_staged(tmp_path: Path) -> None:
    """A view may have rows without an id: no table of judgeflow can key them (``null_ids`` counts them)."""
    url = f"sqlite:///{tmp_path / 'nulls.sqlite'}"
    engine = create_engine(url)
    columns: list[Column[Any]] = [Column("id", Integer), Column("created_at", DateTime(timezone=True))]
    table = Table("log_responses", MetaData(), *columns, Column("question", Text), Column("response", Text))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "created_at": T0, "question": "q", "response": "r"} for i in (None, 7)])
    engine.dispose()
    warehouse = Warehouse.from_url(url, SourceConfig(table="log_responses", context_column=None, segment_columns=()))
    try:
        warehouse.ensure_schema()
        assert stage(warehouse) == 1
        assert staged_ids(warehouse) == [7]
        assert stage(warehouse, rescore=True) == 1
    finally:
        warehouse.close()


def test_read_items_carry_each_segment_column_under_its_own_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'segments.sqlite'}"
    engine = create_engine(url)
    columns: list[Column[Any]] = [
        Column("id", Integer, primary_key=True),
        Column("created_at", DateTime(timezone=True)),
    ]
    columns += [Column("question", Text), Column("response", Text), Column("topic", String(40))]
    table = Table("segmented", MetaData(), *columns, Column("locale", String(8)), Column("plan", String(8)))
    table.metadata.create_all(engine)
    row = {"created_at": T0, "question": "q", "response": "r"}
    with engine.begin() as conn:
        conn.execute(table.insert(), [{**row, "id": 1, "topic": "billing", "locale": "de", "plan": "pro"}])
    engine.dispose()
    config = SourceConfig(table="segmented", context_column=None, segment_columns=("topic", "locale", "plan", "none"))
    warehouse = Warehouse.from_url(url, config)
    try:
        warehouse.ensure_schema()
        stage(warehouse)
        ((item,),) = warehouse.read_batch(
            warehouse.plan_batches(RUN)[0],
            rubric_name="helpfulness",
            rubric_version=HELPFULNESS.version_key,
            dag_run_id="run",
            rescore=False,
        )
        assert (item.question, item.response, item.context) == ("q", "r", None)
        assert item.segments == {"topic": "billing", "locale": "de", "plan": "pro"}, (
            "a column the table lacks is left out"
        )
    finally:
        warehouse.close()


# --- how a run is cut into batches ----------------------------------------------------------------


def in_interval(count: int) -> list[tuple[int, dt.datetime]]:
    return [(i, T0 + i * dt.timedelta(minutes=1)) for i in range(1, count + 1)]


@pytest.mark.parametrize(
    ("count", "rubrics", "batching", "expected"),
    [
        (5, 1, {"batch_size": 2, "max_batches": 3}, [(0, 2), (1, 2), (2, 1)]),  # batch_size each
        (5, 1, {"batch_size": 2, "max_batches": 1}, [(0, 5)]),  # one batch at most: all in it
        (7, 1, {"batch_size": 1, "max_batches": 3}, [(0, 3), (1, 3), (2, 1)]),  # ceil(7 / 3) each
        (4, 1, {"batch_size": 1, "max_batches": 2}, [(0, 2), (1, 2)]),
        (10, 2, {"batch_size": 1, "max_batches": 5}, [(0, 5), (1, 5)]),  # 2 rubrics x 2 batches <= 5 tasks
        (3, 2, {"batch_size": 1, "max_batches": 1}, [(0, 3)]),  # never fewer than one batch
    ],
)
def test_batches_are_cut_by_batch_size_and_grow_to_stay_under_max_batches(
    make_warehouse: Any, count: int, rubrics: int, batching: dict[str, Any], expected: list[tuple[int, int]]
) -> None:
    """``max_batches`` caps the run's score tasks (rubrics x batches, Airflow's map length): over it,
    batches grow to ceil(count / (max_batches // rubrics)); each batch holds a contiguous id range."""
    warehouse = make_warehouse(in_interval(count))
    assert stage(warehouse, rubrics=[HELPFULNESS, CONCISION][:rubrics], **batching) == count
    assert sizes(warehouse) == expected
    first = 0
    for ref, (_, size) in zip(warehouse.plan_batches(RUN), expected, strict=True):
        assert (ref.first_id, ref.last_id) == (str(first + 1), str(first + size))
        first += size


def test_a_limit_stages_the_lowest_ids_and_the_log_says_how_they_were_cut(
    make_warehouse: Any, records_of: Callable[[str], list[logging.LogRecord]]
) -> None:
    """Created in the reverse order of their ids: the limit keeps the lowest ids all the same."""
    warehouse = make_warehouse([(i, END - i * dt.timedelta(minutes=1)) for i in range(1, 9)])
    records = records_of("judgeflow.storage.warehouse")

    assert stage(warehouse, limit=3, batch_size=2) == 3
    assert staged_items(warehouse) == [(1, 0), (2, 0), (3, 1)]
    assert [r.getMessage() for r in records] == ["staged 3 responses for run dag/run in batches of 2"]
    assert stage(warehouse, limit=3, batch_size=2, rescore=True) == 3
    assert staged_items(warehouse) == [(1, 0), (2, 0), (3, 1)]
    assert stage(warehouse, limit=100, batch_size=2) == 8, "a limit over the count takes them all"


def test_a_limit_applies_to_the_sample(make_warehouse: Any) -> None:
    warehouse = make_warehouse(in_interval(20))
    rule = SampleRule(SamplingConfig(rate=0.5), salt="staging")
    sampled = sorted(i for i in range(1, 21) if unit_hash("staging", i) < 0.5)
    assert 3 < len(sampled) < 20

    assert stage(warehouse, sample=rule) == len(sampled)
    assert staged_ids(warehouse) == sampled
    assert stage(warehouse, sample=rule, limit=3, batch_size=2) == 3
    assert staged_items(warehouse) == [(sampled[0], 0), (sampled[1], 0), (sampled[2], 1)]


def test_nothing_to_judge_stages_nothing(make_warehouse: Any) -> None:
    warehouse = make_warehouse([(1, END)])
    assert stage(warehouse) == 0
    assert warehouse.plan_batches(RUN) == []


def test_batches_follow_id_order_whatever_order_the_select_gives(make_warehouse: Any) -> None:
    """SQL keeps no order from a subquery (Snowflake, BigQuery reorder): the batch index is numbered
    over the ids themselves, so every batch is a contiguous id range."""
    warehouse = make_warehouse(in_interval(6))
    ids = select(warehouse.source.c.id.label("response_id")).order_by(warehouse.source.c.id.desc())
    assert warehouse._cut_batches(RUN, ids, None, 2, 10) == 6
    assert staged_items(warehouse) == [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (6, 2)]


def test_staging_again_replaces_the_run_s_list_and_its_sampling_scratch(make_warehouse: Any) -> None:
    """Idempotent: a rerun stages the same list once; what a run killed half-way through sampling
    left under its scratch keys goes too, and other runs' lists stay."""
    warehouse = make_warehouse(in_interval(4))
    stage(warehouse, run_key="dag/other")
    with warehouse.engine.begin() as conn:
        for key in (RUN, *scratch_keys(RUN)):
            conn.execute(warehouse.items.insert(), [{"run_key": key, "response_id": 99, "batch_index": 0}])

    assert stage(warehouse) == 4
    assert stage(warehouse) == 4
    with warehouse.engine.connect() as conn:
        keys = sorted({row[0] for row in conn.execute(select(warehouse.items.c.run_key))})
    assert keys == ["dag/other", RUN]
    assert staged_items(warehouse) == [(1, 0), (2, 0), (3, 0), (4, 0)]
    assert staged_ids(warehouse, "dag/other") == [1, 2, 3, 4]


# --- failures name what was being done ------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "action", "call"),
    [
        ("judge_run_items", "stage run items", lambda w: stage(w)),
        ("app_responses", "stage run items", lambda w: stage(w)),  # the delete works, the cut fails
        ("judge_runs", "record run", lambda w: w.record_run({"run_key": RUN})),
    ],
)
def test_a_failing_staging_or_run_record_names_what_was_being_done(
    make_warehouse: Any, table: str, action: str, call: Callable[[Warehouse], Any]
) -> None:
    warehouse = make_warehouse(in_interval(2))
    with warehouse.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {table}")
    with pytest.raises(WarehouseError, match=f"^warehouse: could not {action}: "):
        call(warehouse)


# --- writes -----------------------------------------------------------------------------------------


def test_a_score_removes_only_its_own_rubric_s_error_and_keeps_4000_characters_of_rationale(
    make_warehouse: Any,
) -> None:
    warehouse = make_warehouse(in_interval(1))
    same_version = HELPFULNESS.version_key
    warehouse.write([], [failed(1, retryable=True), failed(1, retryable=True, rubric="concision")])
    long = {name: CriterionScore(3, name[0] * 3000) for name in HELPFULNESS.criterion_names}
    base = score(1, HELPFULNESS, same_version, "run")
    fields = {f: getattr(base, f) for f in ScoreRecord.__dataclass_fields__}
    warehouse.write([ScoreRecord(**{**fields, "criteria": long})], [])

    with warehouse.engine.connect() as conn:
        errors = [(r.rubric_name, r.rubric_version) for r in conn.execute(select(warehouse.errors))]
        (rationale,) = conn.execute(select(warehouse.scores.c.rationale)).scalars()
    assert errors == [("concision", same_version)]
    assert rationale == "; ".join(f"{n}: {n[0] * 3000}" for n in HELPFULNESS.criterion_names)[:4000]
    assert len(rationale) == 4000


# --- order on PostgreSQL: rows come back in whatever order the plan gives ----------------------------


@pytest.fixture
def postgres_engine() -> Iterator[Engine]:
    """A private schema on the local PostgreSQL (SQLite happens to return these rows in id order)."""
    with throwaway_schema("jf_staging") as schema:
        engine = schema_engine(schema)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_the_lowest_ids_are_staged_planned_and_read_in_order(
    postgres_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source's rows are stored in the reverse order of their ids (and so is the sample): the
    limit still keeps the lowest ids, batches are planned by index and each is read by id."""
    seed_warehouse(postgres_engine, source_rows((i, T0 + i * dt.timedelta(minutes=1)) for i in range(30, 0, -1)))
    warehouse = Warehouse.from_url(postgres_engine, SourceConfig())
    with pytest.raises(ConfigError, match="judgeflow db upgrade"):
        warehouse.ensure_schema()  # another warehouse than SQLite is checked, never upgraded by a run
    warehouse.upgrade_schema()
    warehouse.ensure_schema()

    assert stage(warehouse, limit=12, batch_size=2, max_batches=4) == 12
    assert staged_items(warehouse) == [(i, (i - 1) // 3) for i in range(1, 13)]
    with postgres_engine.begin() as conn:  # statistics, as autovacuum keeps them: hash joins and aggregates
        conn.execute(text("ANALYZE"))  # are planned then, and hand rows back in no particular order
    assert [(ref.batch_index, ref.first_id, ref.last_id) for ref in warehouse.plan_batches(RUN)] == [
        (0, "1", "3"), (1, "4", "6"), (2, "7", "9"), (3, "10", "12"),
    ]  # fmt: skip
    assert read(warehouse) == list(range(1, 13))

    real = warehouse_module.sample_candidates

    def written_backwards(*args: Any, **kwargs: Any) -> Any:
        sampled = real(*args, **kwargs)
        items = warehouse.items
        with warehouse.engine.begin() as conn:
            kept = sorted(conn.execute(select(items.c.response_id).where(items.c.run_key == sampled.key)).scalars())
            conn.execute(items.delete().where(items.c.run_key == sampled.key))
            rows = [{"run_key": sampled.key, "response_id": i, "batch_index": 0} for i in reversed(kept)]
            conn.execute(items.insert(), rows)
        return sampled

    monkeypatch.setattr(warehouse_module, "sample_candidates", written_backwards)
    sampled = sorted(i for i in range(1, 31) if unit_hash("staging", i) < 0.5)
    rule = SampleRule(SamplingConfig(rate=0.5), salt="staging")
    assert stage(warehouse, sample=rule, limit=4, batch_size=2) == 4
    assert staged_ids(warehouse) == sampled[:4]
    warehouse.close()
