"""The warehouse on SQLite: one staging for several rubrics, and the writes and reads the runs rely on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from judgeflow.config import BatchingConfig, SourceConfig
from judgeflow.errors import ConfigError, WarehouseError
from judgeflow.records import BatchRef, CriterionScore, ErrorKind, ErrorRecord, ScoreRecord, Usage
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.storage.warehouse import READ_CHUNK, Warehouse
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support import ROOT

END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def score(response_id: int, rubric: Rubric, version: str, run_id: str) -> ScoreRecord:
    criteria = {name: CriterionScore(3, "ok") for name in rubric.criterion_names}
    return ScoreRecord(
        response_id,
        rubric.name,
        version,
        3.0,
        criteria,
        rubric.model,
        Usage(10, 5),
        0.001,
        5,
        False,
        False,
        run_id,
        END,
    )


def test_each_rubric_of_a_run_reads_and_counts_what_it_needed(tmp_path: Path) -> None:
    """Responses 21-30 arrived two days ago and were scored under an older version of helpfulness:
    the run stages them once because concision has never judged them, and helpfulness leaves them
    alone (re-judging the past after a rubric change is a backfill someone chose)."""
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    engine = create_engine(url)
    seed_warehouse(engine, (r for r in generate_responses(count=15, end=END, seed=3) if r["id"] > 5))
    old = generate_responses(count=10, end=END - 2 * DAY, seed=4, first_id=21)
    seed_warehouse(engine, ({**r, "response": f"answer {r['id']}"} for r in old))
    warehouse = Warehouse.from_url(url, SourceConfig())
    warehouse.ensure_schema()
    helpfulness, concision = (load_rubric(ROOT / "include" / "rubrics", n) for n in ("helpfulness", "concision"))
    warehouse.write([score(i, helpfulness, "0+older", "earlier") for i in range(21, 31)], [])

    staged = warehouse.stage_run(
        run_key="dag/run",
        rubrics=[helpfulness, concision],
        start=END - DAY,
        end=END,
        rescore=False,
        batching=BatchingConfig(batch_size=100),
    )
    (batch,) = warehouse.plan_batches("dag/run")

    def read(rubric: Rubric) -> list[int]:
        pages = warehouse.read_batch(
            batch,
            rubric_name=rubric.name,
            rubric_version=rubric.version_key,
            dag_run_id="run",
            rescore=False,
            since=END - DAY,
        )
        return sorted(item.response_id for page in pages for item in page)

    assert staged == 20, "one staging: what either rubric needs"
    assert read(helpfulness) == list(range(6, 16)), "helpfulness: the interval only"
    assert read(concision) == list(range(6, 16)) + list(range(21, 31)), "concision: the interval and the late ones"

    warehouse.write([score(i, helpfulness, helpfulness.version_key, "run") for i in range(6, 16)], [])
    lost = 30
    judged = [*range(6, 16), *range(21, lost)]
    warehouse.write([score(i, concision, concision.version_key, "run") for i in judged], [])
    totals = {
        r.name: warehouse.run_totals("dag/run", "run", r.name, r.version_key, since=END - DAY)
        for r in (helpfulness, concision)
    }

    assert (totals["helpfulness"]["extracted"], totals["helpfulness"]["unaccounted"]) == (10, 0)
    assert (totals["concision"]["extracted"], totals["concision"]["unaccounted"]) == (20, 1), "the lost one shows"
    assert totals["helpfulness"]["mean"] == 3.0
    warehouse.close()


# --- found by mutation testing (docs/mutation.md): the reads and writes no other fast test reached ---


HELPFULNESS = load_rubric(ROOT / "include" / "rubrics", "helpfulness")
T0 = END - DAY


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    seed_warehouse(create_engine(url), generate_responses(count=4, end=END, seed=5))  # ids 1-4, the last day
    warehouse = Warehouse.from_url(url, SourceConfig())
    warehouse.ensure_schema()
    yield warehouse
    warehouse.close()


def add_source_rows(warehouse: Warehouse, *rows: tuple[int | None, dt.datetime]) -> None:
    with warehouse.engine.begin() as conn:
        for rid, created in rows:
            conn.execute(
                insert(warehouse.source).values(id=rid, created_at=created, question="q", response="r", topic="t")
            )


def scored(
    response_id: int, *, cost: float = 0.001, run_id: str = "run", at: dt.datetime = END, **criteria: int
) -> ScoreRecord:
    record = score(response_id, HELPFULNESS, HELPFULNESS.version_key, run_id)
    values = {**dict.fromkeys(HELPFULNESS.criterion_names, 3), **criteria}
    crit = {name: CriterionScore(value, f"{name} is {value}") for name, value in values.items()}
    overall = HELPFULNESS.overall(values)
    return ScoreRecord(
        response_id, record.rubric_name, record.rubric_version, overall, crit, record.model, Usage(10, 5), cost, 5,
        False, False, run_id, at,
    )  # fmt: skip


def error(response_id: int, kind: ErrorKind = ErrorKind.JUDGE_ERROR, version: str | None = None) -> ErrorRecord:
    return ErrorRecord(
        response_id, HELPFULNESS.name, version or HELPFULNESS.version_key, kind, "HTTP 500 " + "x" * 10, 3, "run", END,
        raw_reply='{"tone": 9}',
    )  # fmt: skip


def test_errors_are_written_whole_and_a_later_score_removes_only_its_own(warehouse: Warehouse) -> None:
    warehouse.write([], [error(1), error(2, ErrorKind.INVALID_INPUT), error(1, version="older")])
    with warehouse.engine.connect() as conn:
        rows = {(r.response_id, r.rubric_version): r._asdict() for r in conn.execute(select(warehouse.errors))}
    assert len(rows) == 3
    one = rows[(1, HELPFULNESS.version_key)]
    assert {
        k: one[k] for k in ("rubric_name", "kind", "reason", "retryable", "attempts", "raw_reply", "dag_run_id")
    } == {
        "rubric_name": "helpfulness",
        "kind": "judge_error",
        "reason": "HTTP 500 " + "x" * 10,
        "retryable": True,
        "attempts": 3,
        "raw_reply": '{"tone": 9}',
        "dag_run_id": "run",
    }
    assert one["recorded_at"].replace(tzinfo=dt.UTC) == END
    assert rows[(2, HELPFULNESS.version_key)]["retryable"] is False  # invalid input is not extracted again

    warehouse.write([scored(1)], [])
    with warehouse.engine.connect() as conn:
        left = sorted((r.response_id, r.rubric_version) for r in conn.execute(select(warehouse.errors)))
    assert left == [(1, "older"), (2, HELPFULNESS.version_key)]


def test_null_ids_and_created_counts_are_for_the_half_open_interval(tmp_path: Path) -> None:
    """A view or a log table may have rows without an id (an INTEGER PRIMARY KEY cannot: SQLite fills it)."""
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

    url = f"sqlite:///{tmp_path / 'nulls.sqlite'}"
    engine = create_engine(url)
    columns = [Column("id", Integer), Column("created_at", DateTime(timezone=True)), Column("question", Text)]
    columns += [Column("context", Text), Column("response", Text), Column("topic", String(40))]
    table = Table("log_responses", MetaData(), *columns)
    table.metadata.create_all(engine)
    rows = [(None, T0), (None, END - dt.timedelta(seconds=1)), (None, END), (100, T0 - DAY), (101, END), (102, T0)]
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": i, "created_at": c, "question": "q", "response": "r"} for i, c in rows])
    engine.dispose()
    warehouse = Warehouse.from_url(url, SourceConfig(table="log_responses"))
    try:
        assert warehouse.null_ids(T0, END) == 2
        assert warehouse.null_ids(END, END + DAY) == 1
        assert warehouse.count_created(T0, END) == 3  # two without an id, and 102 at the start
        assert warehouse.count_created(T0 - DAY, T0) == 1
    finally:
        warehouse.close()


def test_spend_is_this_run_s_and_the_day_s_for_the_suite_s_rubrics_only(warehouse: Warehouse) -> None:
    warehouse.write(
        [
            scored(1, cost=0.5, run_id="run", at=T0),  # this run, at the day's start
            scored(2, cost=0.25, run_id="other", at=END - dt.timedelta(seconds=1)),  # another run, same day
            scored(3, cost=0.125, run_id="run", at=END),  # this run, but the next day
            scored(4, cost=2.0, run_id="other", at=T0 - dt.timedelta(seconds=1)),  # the day before
        ],
        [],
    )
    run_spent, day_spent = warehouse.spent_usd(
        dag_run_id="run", day_start=T0, day_end=END, rubric_names=["helpfulness"]
    )
    assert (run_spent, day_spent) == (0.625, 0.75)
    nothing = warehouse.spent_usd(dag_run_id="run", day_start=T0, day_end=END, rubric_names=["concision"])
    assert nothing == (0.0, 0.0)
    assert all(isinstance(v, float) for v in nothing)


def test_rationales_are_keyed_by_text_ids_for_one_rubric_version(warehouse: Warehouse) -> None:
    warehouse.write([scored(1, accuracy=5), scored(2)], [])
    got = warehouse.rationales(["1", "2", "3"], rubric_name="helpfulness", rubric_version=HELPFULNESS.version_key)
    names = HELPFULNESS.criterion_names
    assert got["1"] == "; ".join(f"{n}: {n} is {5 if n == 'accuracy' else 3}" for n in names)
    assert set(got) == {"1", "2"}
    assert warehouse.rationales(["1"], rubric_name="helpfulness", rubric_version="0+older") == {}
    assert warehouse.rationales([1], rubric_name="concision", rubric_version=HELPFULNESS.version_key) == {}


def test_scores_frame_has_one_row_per_scored_response_in_the_window(warehouse: Warehouse) -> None:
    add_source_rows(warehouse, (50, T0 - dt.timedelta(seconds=1)), (51, END))  # outside the window
    warehouse.write([scored(1, accuracy=5, tone=1), scored(2), scored(50), scored(51)], [])
    other = score(3, HELPFULNESS, "0+older", "run")
    warehouse.write([other], [])
    frame = warehouse.scores_frame(
        rubric_name="helpfulness",
        rubric_version=HELPFULNESS.version_key,
        criteria=[*HELPFULNESS.criterion_names, "missing"],
        start=T0,
        end=END,
    )
    frame = frame.sort_values("response_id").reset_index(drop=True)
    assert list(frame.columns[:4]) == ["response_id", "created_at", "overall", "topic"]
    assert frame["response_id"].tolist() == [1, 2]
    assert frame["overall"].tolist() == [HELPFULNESS.overall({"accuracy": 5, "tone": 1, "completeness": 3}), 3.0]
    assert frame["accuracy"].tolist() == [5.0, 3.0] and frame["tone"].tolist() == [1.0, 3.0]
    assert frame["overall"].dtype == float and frame["accuracy"].dtype == float
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert frame["created_at"].between(T0, END, inclusive="left").all()
    assert frame["missing"].isna().all()


def test_scores_frame_of_an_empty_window_has_the_columns(warehouse: Warehouse) -> None:
    frame = warehouse.scores_frame(
        rubric_name="helpfulness", rubric_version="none", criteria=["accuracy"], start=T0, end=END
    )
    assert frame.empty
    assert list(frame.columns) == ["response_id", "created_at", "overall", "topic", "accuracy"]


def test_a_source_query_is_read_with_the_configured_names_and_types(warehouse: Warehouse) -> None:
    query = "SELECT id AS rid, created_at AS ts, question AS q, response AS a, topic FROM app_responses;"
    config = SourceConfig(
        query=query, id_column="rid", created_at_column="ts", question_column="q", response_column="a",
        context_column=None,
    )  # fmt: skip
    reader = Warehouse.from_url(warehouse.engine.url.render_as_string(hide_password=False), config)
    try:
        assert reader.count_created(T0, END) == 4
        assert [c.name for c in reader.source.c] == ["rid", "ts", "q", "a", "topic"]
    finally:
        reader.close()


def test_a_source_query_that_does_not_run_is_named_with_its_columns(warehouse: Warehouse) -> None:
    config = SourceConfig(query="SELECT id FROM no_such_table", context_column=None, segment_columns=())
    with pytest.raises(ConfigError) as caught:
        Warehouse.from_url(warehouse.engine.url.render_as_string(hide_password=False), config).count_created(T0, END)
    message = str(caught.value)
    assert message.startswith("source.query: the query does not give the columns ['id', 'created_at', 'question', ")
    assert "no such table: no_such_table" in message


def test_a_source_query_with_repeated_column_names_is_refused() -> None:
    config = SourceConfig(query="SELECT 1", question_column="id")
    with pytest.raises(ConfigError, match=r"the query's columns must be distinct, got \['id', 'created_at', 'id'"):
        Warehouse.from_url("sqlite://", config).count_created(T0, END)


# --- staging and reads, page by page (found by mutation testing) ---


def staged_warehouse(tmp_path: Path, count: int, *, batch_size: int) -> Warehouse:
    url = f"sqlite:///{tmp_path / 'staged.sqlite'}"
    seed_warehouse(create_engine(url), generate_responses(count=count, end=END, seed=9))
    warehouse = Warehouse.from_url(url, SourceConfig())
    warehouse.ensure_schema()
    staged = warehouse.stage_run(
        run_key="dag/run",
        rubrics=[HELPFULNESS],
        start=T0,
        end=END,
        rescore=False,
        batching=BatchingConfig(batch_size=batch_size),
    )
    assert staged == count
    return warehouse


def read_ids(warehouse: Warehouse, ref: BatchRef, **kwargs: Any) -> list[list[int]]:
    options = {"rubric_name": "helpfulness", "rubric_version": HELPFULNESS.version_key, "dag_run_id": "run"}
    options |= {"rescore": False, **kwargs}
    return [[item.response_id for item in page] for page in warehouse.read_batch(ref, **options)]


def test_batches_are_planned_in_order_with_their_sizes_and_id_ranges(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 25, batch_size=10)
    try:
        refs = warehouse.plan_batches("dag/run")
        assert [(r.batch_index, r.size) for r in refs] == [(0, 10), (1, 10), (2, 5)]
        pages = [read_ids(warehouse, r) for r in refs]
        for ref, (page,) in zip(refs, pages, strict=True):
            assert (ref.run_key, ref.first_id, ref.last_id) == ("dag/run", str(min(page)), str(max(page)))
        assert sorted(i for (page,) in pages for i in page) == list(range(1, 26)), "each response in one batch"
        assert warehouse.plan_batches("other/run") == []
    finally:
        warehouse.close()


def test_a_batch_is_read_in_pages_of_read_chunk_each_response_once_in_id_order(tmp_path: Path) -> None:
    count = 2 * READ_CHUNK + 7
    warehouse = staged_warehouse(tmp_path, count, batch_size=count)
    try:
        (ref,) = warehouse.plan_batches("dag/run")
        pages = read_ids(warehouse, ref)
        assert [len(p) for p in pages] == [READ_CHUNK, READ_CHUNK, 7]
        assert [i for page in pages for i in page] == list(range(1, count + 1))
    finally:
        warehouse.close()


def test_a_batch_of_exactly_read_chunk_ends_after_one_empty_read(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, READ_CHUNK, batch_size=READ_CHUNK)
    try:
        (ref,) = warehouse.plan_batches("dag/run")
        assert [len(p) for p in read_ids(warehouse, ref)] == [READ_CHUNK]
    finally:
        warehouse.close()


def test_read_items_carry_the_source_s_texts_and_segments(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 3, batch_size=10)
    try:
        (ref,) = warehouse.plan_batches("dag/run")
        opts = {"rubric_name": "helpfulness", "rubric_version": HELPFULNESS.version_key, "dag_run_id": "run"}
        (page,) = warehouse.read_batch(ref, rescore=False, **opts)
        with warehouse.engine.connect() as conn:
            rows = {r.id: r for r in conn.execute(select(warehouse.source))}
        assert [(i.question, i.response, i.context, i.segments) for i in page] == [
            (rows[i].question, rows[i].response, rows[i].context, {"topic": rows[i].topic}) for i in (1, 2, 3)
        ]
        assert any(rows[i].context for i in (1, 2, 3)) and len({rows[i].question for i in (1, 2, 3)}) == 3
        no_context = Warehouse.from_url(warehouse.engine, SourceConfig(context_column=None))
        (page,) = no_context.read_batch(ref, rescore=False, **opts)
        assert [i.context for i in page] == [None, None, None]
    finally:
        warehouse.close()


def test_a_read_leaves_out_what_is_scored_and_with_skip_errored_what_this_run_failed(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 6, batch_size=10)
    try:
        (ref,) = warehouse.plan_batches("dag/run")
        warehouse.write([scored(1, run_id="run"), scored(2, run_id="earlier")], [])
        warehouse.write([], [error(3), error(4, version="older")])
        warehouse.write(
            [], [ErrorRecord(5, "helpfulness", HELPFULNESS.version_key, ErrorKind.JUDGE_ERROR, "x", 1, "b", END)]
        )
        assert read_ids(warehouse, ref) == [[3, 4, 5, 6]], "a retryable error is still owed a verdict"
        assert read_ids(warehouse, ref, skip_errored=True) == [[4, 5, 6]], "this run's own error, this version"
        concision = ErrorRecord(6, "concision", HELPFULNESS.version_key, ErrorKind.JUDGE_ERROR, "x", 1, "run", END)
        warehouse.write([], [concision])
        assert read_ids(warehouse, ref, skip_errored=True) == [[4, 5, 6]], "and this rubric's"
        # a rescore judges again what other runs scored, and skips only what this run did
        assert read_ids(warehouse, ref, rescore=True) == [[2, 3, 4, 5, 6]]
        assert read_ids(warehouse, ref, rescore=True, since=T0) == [[2, 3, 4, 5, 6]], "since is not for rescores"
        other = read_ids(warehouse, ref, rubric_name="concision", rubric_version=HELPFULNESS.version_key)
        assert other == [[1, 2, 3, 4, 5, 6]]
        assert read_ids(warehouse, ref, rubric_version="0+older") == [[1, 2, 3, 4, 5, 6]]
    finally:
        warehouse.close()


def test_a_read_of_another_run_or_batch_finds_nothing(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 4, batch_size=2)
    try:
        first, second = warehouse.plan_batches("dag/run")
        assert read_ids(warehouse, first) == [[1, 2]] and read_ids(warehouse, second) == [[3, 4]]
        assert read_ids(warehouse, BatchRef("other/run", 0, 2, "1", "2")) == []
        warehouse.discard_run_items("dag/run")
        assert warehouse.plan_batches("dag/run") == []
    finally:
        warehouse.close()


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("plan batches", lambda w: w.plan_batches("dag/run")),
        ("read batch", lambda w: list(w.read_batch(BatchRef("r", 0, 1, "1", "1"), rubric_name="h",
                                                     rubric_version="1", dag_run_id="r", rescore=False))),
        ("discard run items", lambda w: w.discard_run_items("dag/run")),
        ("write results", lambda w: w.write([scored(1)], [])),
        ("read spend", lambda w: w.spent_usd(dag_run_id="r", day_start=T0, day_end=END, rubric_names=["h"])),
        ("read rationales", lambda w: w.rationales([1], rubric_name="h", rubric_version="1")),
        ("read scores", lambda w: w.scores_frame(rubric_name="h", rubric_version="1", criteria=[], start=T0, end=END)),
    ],
)  # fmt: skip
def test_a_failing_statement_names_what_was_being_done(warehouse: Warehouse, action: str, call: Any) -> None:
    with warehouse.engine.begin() as conn:
        for table in ("judge_run_items", "judge_criterion_scores", "judge_scores", "judge_errors"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
    with pytest.raises(WarehouseError, match=f"^warehouse: could not {action}: "):
        call(warehouse)


def test_null_ids_and_counts_name_what_failed(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 1, batch_size=10)
    try:
        with warehouse.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE app_responses")
        with pytest.raises(WarehouseError, match=r"^warehouse: could not count responses without an id: "):
            warehouse.null_ids(T0, END)
        with pytest.raises(WarehouseError, match=r"^warehouse: could not count the interval's responses: "):
            warehouse.count_created(T0, END)
    finally:
        warehouse.close()


def test_run_totals_count_this_run_s_scores_errors_tokens_and_cost_exactly(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 10, batch_size=10)
    try:

        def record(i: int, *, cost: float, hit: bool = False, run_id: str = "run", version: str = "") -> ScoreRecord:
            base = scored(i, cost=cost, run_id=run_id, accuracy=1 + i % 5)
            return ScoreRecord(
                i, base.rubric_name, version or base.rubric_version, base.overall, base.criteria, base.model,
                Usage(100 + i, 10 + i, 1000 * i, 7 * i), cost, 5, hit, False, run_id, END,
            )  # fmt: skip

        mine = [record(1, cost=0.5), record(2, cost=0.25, hit=True), record(3, cost=0.125)]
        warehouse.write([*mine, record(4, cost=9.0, run_id="other"), record(5, cost=9.0, version="0+older")], [])

        def failed(i: int, kind: ErrorKind, run_id: str = "run") -> ErrorRecord:
            return ErrorRecord(i, "helpfulness", HELPFULNESS.version_key, kind, "why", 1, run_id, END)

        budget, malformed = ErrorKind.BUDGET_EXHAUSTED, ErrorKind.MALFORMED_VERDICT
        warehouse.write([], [failed(6, budget), failed(7, malformed), failed(8, ErrorKind.JUDGE_ERROR)])
        warehouse.write([], [failed(9, budget, run_id="other")])
        totals = warehouse.run_totals("dag/run", "run", "helpfulness", HELPFULNESS.version_key)
        assert totals == {
            "extracted": 10,
            "scored": 3,
            "from_cache": 1,
            "errors": 3,
            "left_for_budget": 1,
            "malformed": 1,
            "input_tokens": 101 + 102 + 103,
            "output_tokens": 11 + 12 + 13,
            "cache_write_tokens": 1000 + 2000 + 3000,
            "cache_read_tokens": 7 + 14 + 21,
            "cost_usd": 0.875,
            "mean": round(sum(s.overall for s in mine) / 3, 4),
            "unaccounted": 4,  # 4 and 9 by another run, 5 under another version, 10 never
        }
        assert isinstance(totals["cost_usd"], float) and isinstance(totals["input_tokens"], int)
        empty = warehouse.run_totals("dag/run", "run", "concision", HELPFULNESS.version_key)
        assert (empty["extracted"], empty["scored"], empty["from_cache"], empty["cost_usd"]) == (10, 0, 0, 0.0)
        assert (empty["mean"], empty["unaccounted"], empty["left_for_budget"], empty["malformed"]) == (None, 10, 0, 0)
        assert warehouse.run_totals("other/run", "run", "helpfulness", HELPFULNESS.version_key)["extracted"] == 0
    finally:
        warehouse.close()


def test_run_totals_since_the_interval_count_only_what_this_rubric_wanted(tmp_path: Path) -> None:
    """Staged, but already scored by this rubric in an earlier run: not extracted for this rubric;
    this run's own scores and errors always count, and what is still unjudged is unaccounted."""
    warehouse = staged_warehouse(tmp_path, 5, batch_size=10)
    try:
        warehouse.write([scored(1, run_id="earlier"), scored(2, run_id="run")], [error(3, ErrorKind.INVALID_INPUT)])
        totals = warehouse.run_totals("dag/run", "run", "helpfulness", HELPFULNESS.version_key, since=T0)
        assert (totals["extracted"], totals["scored"], totals["errors"], totals["unaccounted"]) == (4, 1, 1, 2)
        everything = warehouse.run_totals("dag/run", "run", "helpfulness", HELPFULNESS.version_key)
        assert everything["extracted"] == 5
        later = warehouse.run_totals("dag/run", "run", "helpfulness", HELPFULNESS.version_key, since=END)
        assert later["extracted"] == 4, "before the interval, wanted only while the rubric never scored it"
    finally:
        warehouse.close()


def test_staging_leaves_out_what_is_scored_or_failed_for_good_under_this_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stage.sqlite'}"
    seed_warehouse(create_engine(url), generate_responses(count=8, end=END, seed=9))
    warehouse = Warehouse.from_url(url, SourceConfig())
    warehouse.ensure_schema()
    try:
        concision = load_rubric(ROOT / "include" / "rubrics", "concision")
        permanent, retryable = ErrorKind.INVALID_INPUT, ErrorKind.JUDGE_ERROR
        warehouse.write(
            [scored(1), score(2, concision, concision.version_key, "earlier"), score(3, HELPFULNESS, "0+older", "e")],
            [error(4, permanent), error(5, retryable), error(6, permanent, version="0+older")],
        )
        options = {"start": T0, "end": END, "rescore": False, "batching": BatchingConfig(batch_size=100)}

        def staged(*rubrics: Rubric) -> list[int]:
            warehouse.stage_run(run_key="dag/run", rubrics=list(rubrics), **options)
            return sorted(i for ref in warehouse.plan_batches("dag/run") for page in read_all(ref) for i in page)

        def read_all(ref: BatchRef) -> list[list[int]]:
            with warehouse.engine.connect() as conn:
                rows = conn.execute(select(warehouse.items.c.response_id).where(
                    warehouse.items.c.run_key == ref.run_key, warehouse.items.c.batch_index == ref.batch_index
                )).all()  # fmt: skip
            return [[row[0] for row in rows]]

        assert staged(HELPFULNESS) == [2, 3, 5, 6, 7, 8], "1 scored and 4 invalid under this version"
        assert staged(concision) == [1, 3, 4, 5, 6, 7, 8], "2 scored by concision"
        assert staged(HELPFULNESS, concision) == [1, 2, 3, 4, 5, 6, 7, 8]
        (ref,) = warehouse.plan_batches("dag/run")
        assert read_ids(warehouse, ref, since=T0) == [[2, 3, 5, 6, 7, 8]], "helpfulness reads its own only"
    finally:
        warehouse.close()


def test_a_response_created_at_the_interval_s_start_is_in_it(tmp_path: Path) -> None:
    warehouse = staged_warehouse(tmp_path, 2, batch_size=10)
    try:
        with warehouse.engine.begin() as conn:
            conn.execute(warehouse.source.update().where(warehouse.source.c.id == 1).values(created_at=T0))
            conn.execute(warehouse.source.update().where(warehouse.source.c.id == 2).values(created_at=T0 - DAY))
        warehouse.write([score(2, HELPFULNESS, "0+older", "e")], [])  # scored before: not wanted late
        (ref,) = warehouse.plan_batches("dag/run")
        assert read_ids(warehouse, ref, since=T0) == [[1]]
    finally:
        warehouse.close()
