"""The warehouse: stage the run's work, stream it to the judge, upsert scores, record errors.

Written once with SQLAlchemy Core for every warehouse (what differs by dialect is in
:mod:`judgeflow.storage.dialects`).
Work moves in bulk: staging is one ``INSERT ... SELECT`` inside the database, reads stream in
chunks, writes are one executemany upsert per chunk. One :class:`Warehouse` is one engine: the
stores of the other tables it owns share it (:attr:`Warehouse.batches`, :attr:`Warehouse.alerts`),
and :meth:`Warehouse.close` disposes of it.

Tables judgeflow owns (created and upgraded by the migrations, :mod:`judgeflow.storage.migrate`; the
source table is the application's; every column is described in :mod:`judgeflow.storage.schema`):

- ``judge_run_items``: the responses a run set out to judge, cut into batches. XCom carries
  ``(run_key, batch_index)``, never texts; a rerun reads exactly the same work.
- ``judge_scores`` + ``judge_criterion_scores``: one row per (response, rubric, rubric version),
  so rescoring under a new rubric version keeps the old rows.
- ``judge_errors``: a response that has no score, and why; removed when it is later scored.
- ``judge_runs``: one summary row per run.
- ``judge_message_batches`` (:mod:`judgeflow.storage.message_batches`), ``judge_comparisons`` and
  ``judge_alert_state`` (:mod:`judgeflow.storage.alert_store`), ``judge_daily_scores``
  (:mod:`judgeflow.storage.daily_scores`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    column,
    delete,
    exists,
    false,
    func,
    inspect,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from judgeflow.config import BatchingConfig, SourceConfig
from judgeflow.errors import ConfigError
from judgeflow.records import BatchRef, ErrorKind, ErrorRecord, ResponseItem, ScoreRecord
from judgeflow.rubric import Rubric
from judgeflow.storage import migrate
from judgeflow.storage.alert_store import AlertStore
from judgeflow.storage.dialects import check_supported, clip, floor_div
from judgeflow.storage.engine import errors_as, upsert, warehouse_engine
from judgeflow.storage.message_batches import MessageBatchStore
from judgeflow.storage.sampling import SampleRule, sample_candidates, scratch_keys
from judgeflow.storage.schema import (
    alert_history_table,
    alert_tables,
    daily_scores_table,
    judge_scores_indexes,
    judge_tables,
    message_batches_table,
)

log = logging.getLogger(__name__)

READ_CHUNK = 500


class Warehouse:
    """One warehouse connection and the tables judgeflow reads and writes."""

    def __init__(self, engine: Engine, source: SourceConfig) -> None:
        self.engine = engine
        self.source_config = source
        try:
            check_supported(engine.dialect.name)
        except ValueError as exc:
            raise ConfigError(f"warehouse: {exc}") from exc
        self.metadata = MetaData()
        self.source = self._reflect_source()
        id_type = self.source.c[source.id_column].type
        self.items, self.scores, self.criterion_scores, self.errors, self.runs = judge_tables(self.metadata, id_type)
        self.message_batches = message_batches_table(self.metadata)
        self.comparisons, self.alert_state = alert_tables(self.metadata)
        self.alert_history = alert_history_table(self.metadata)
        self.daily_scores = daily_scores_table(self.metadata)
        judge_scores_indexes(self.scores)
        self.batches = MessageBatchStore(engine, self.message_batches)
        self.alerts = AlertStore(engine, self.comparisons, self.alert_state, self.alert_history, runs=self.runs)

    @classmethod
    def from_url(cls, url: str | Engine, source: SourceConfig) -> Warehouse:
        """Connect (to a URL, or through the engine a provider hook built) and reflect the source table;
        a bad table or column is a :class:`ConfigError`."""
        engine = warehouse_engine(url)
        try:
            return cls(engine, source)
        except BaseException:
            engine.dispose()
            raise

    def close(self) -> None:
        """Dispose of the engine's connection pool; safe to call twice."""
        self.engine.dispose()

    def ensure_schema(self) -> None:
        """Make sure judgeflow's tables are at this release's schema revision, before any work.

        A SQLite warehouse is judgeflow's own file: it is upgraded here. Any other warehouse is
        only checked: a :class:`ConfigError` names both revisions and ``judgeflow db upgrade``
        (see :mod:`judgeflow.storage.migrate`). Never touches the source table."""
        if self.engine.dialect.name == "sqlite":
            self.upgrade_schema()
        else:
            migrate.check(self.engine)

    def upgrade_schema(self) -> tuple[str | None, str]:
        """Create or upgrade judgeflow's tables (``judgeflow db upgrade``); returns (from, to) revisions."""
        return migrate.upgrade(self.engine, id_type=self.source.c[self.source_config.id_column].type)

    # --- extract ---------------------------------------------------------------------------------

    def stage_run(
        self,
        *,
        run_key: str,
        rubrics: Sequence[Rubric],
        start: dt.datetime,
        end: dt.datetime,
        rescore: bool,
        batching: BatchingConfig,
        limit: int | None = None,
        backlog: bool = True,
        sample: SampleRule | None = None,
    ) -> int:
        """Freeze the run's work list in ``judge_run_items``; returns how many responses.

        Without ``rescore``: the interval's responses with no score and no permanent error for
        a rubric's version, and (unless ``backlog`` is off) older ones, as far back as
        ``batching.backlog_days``, that arrived late or failed: no score under any version of the
        rubric yet, or a retryable error under this one. A response scored under an older version
        is *not* picked up: after a rubric change, judging past days again is a backfill someone
        chose and priced, not a side effect of the next run. With ``rescore``: every response
        created in the interval. With several rubrics the run stages once, every response that
        one of them needs; each score task then reads what its rubric needs (:meth:`read_batch`).
        With an active ``sample``, only the sample (:mod:`judgeflow.storage.sampling`); ``limit``
        applies after it. The daily run and the backfill estimate both stage through here, so the
        estimate prices what a run will judge. Idempotent: staging the same run again replaces its list.
        """
        backlog_start = start if not backlog else None  # nothing older than the interval
        if backlog and batching.backlog_days:
            backlog_start = end - dt.timedelta(days=batching.backlog_days)
        src, cfg = self.source, self.source_config
        id_col, created = src.c[cfg.id_column], src.c[cfg.created_at_column]
        in_interval = and_(created >= start, created < end)
        if rescore:
            window = in_interval
        else:
            late_window = created < start if backlog_start is None else and_(created < start, created >= backlog_start)
            window = or_(
                *[
                    and_(
                        self._unjudged(id_col, r.name, r.version_key),
                        or_(in_interval, and_(late_window, self._late_wanted(id_col, r.name, r.version_key))),
                    )
                    for r in rubrics
                ]
            )
        # a NULL id cannot be keyed: counted by null_ids() and recorded in the run's summary instead
        eligible = select(id_col.label("response_id")).where(window, id_col.is_not(None)).order_by(id_col)
        max_batches = max(1, batching.max_batches // max(1, len(rubrics)))  # rubric x batch tasks stay under the cap
        with errors_as("stage run items"), self.engine.begin() as conn:
            conn.execute(delete(self.items).where(self.items.c.run_key.in_([run_key, *scratch_keys(run_key)])))
        if sample is None or not sample.active:
            return self._cut_batches(run_key, eligible, limit, batching.batch_size, max_batches)
        sampled = sample_candidates(
            self,
            run_key=run_key,
            eligible=eligible,
            rule=sample,
            start=start,
            end=end,
            rubric_names=[r.name for r in rubrics],
        )
        items = self.items
        kept = select(items.c.response_id).where(items.c.run_key == sampled.key).order_by(items.c.response_id)
        count = self._cut_batches(run_key, kept, limit, batching.batch_size, max_batches)
        self.discard_run_items(*scratch_keys(run_key))
        return count

    def _cut_batches(self, run_key: str, ids: Any, limit: int | None, batch_size: int, max_batches: int) -> int:
        """Stage ``ids`` (a select of ``response_id`` with no limit of its own, ordered: a ``limit``
        keeps its first ones) under ``run_key``, cut into batches in the same statement, in id order:
        ``batch_size`` each, more when there would be over ``max_batches``."""
        eligible_sq = ids.limit(limit).subquery()  # limit(None): no limit
        with errors_as("stage run items"), self.engine.begin() as conn:
            count = conn.execute(select(func.count()).select_from(eligible_sq)).scalar_one()
            if count == 0:
                return 0
            size = max(batch_size, -(-count // max_batches))
            row_number = func.row_number().over(order_by=eligible_sq.c.response_id) - 1
            batch_index = floor_div(row_number, size, self.engine.dialect.name)
            staged = select(literal(run_key), eligible_sq.c.response_id, batch_index)
            conn.execute(self.items.insert().from_select(["run_key", "response_id", "batch_index"], staged))
        log.info("staged %d responses for run %s in batches of %d", count, run_key, size)
        return int(count)

    def null_ids(self, start: dt.datetime, end: dt.datetime) -> int:
        """Responses created in [start, end) whose id is NULL: invalid input that no table of judgeflow
        can key, counted so the run records them (``judge_runs.details.invalid_null_id``) instead of
        dropping them in silence."""
        src, cfg = self.source, self.source_config
        created = src.c[cfg.created_at_column]
        query = select(func.count()).where(src.c[cfg.id_column].is_(None), created >= start, created < end)
        with errors_as("count responses without an id"), self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def discard_run_items(self, *run_keys: str) -> None:
        """Drop a run's work list (a dry run, or a run refused before judging)."""
        with errors_as("discard run items"), self.engine.begin() as conn:
            conn.execute(delete(self.items).where(self.items.c.run_key.in_(run_keys)))

    def plan_batches(self, run_key: str) -> list[BatchRef]:
        """One descriptor per batch of the run: index, size and id range."""
        items = self.items
        query = (
            select(
                items.c.batch_index,
                func.count(),
                func.min(items.c.response_id),
                func.max(items.c.response_id),
            )
            .where(items.c.run_key == run_key)
            .group_by(items.c.batch_index)
            .order_by(items.c.batch_index)
        )
        with errors_as("plan batches"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [BatchRef(run_key, int(i), int(n), str(lo), str(hi)) for i, n, lo, hi in rows]

    def read_batch(
        self,
        ref: BatchRef,
        *,
        rubric_name: str,
        rubric_version: str,
        dag_run_id: str,
        rescore: bool,
        skip_errored: bool = False,
        since: dt.datetime | None = None,
    ) -> Iterator[list[ResponseItem]]:
        """Stream the batch's responses in chunks, leaving out any this run (or, unless
        ``rescore``, any run) has already scored, so a retried task does not pay twice; with
        ``skip_errored``, also those this run recorded an error for (what is still owed a verdict).

        Each chunk is its own short query (keyset pagination on the id), so no read transaction
        stays open while the task writes: SQLite writers are not blocked, PostgreSQL keeps no
        long transaction. ``since`` (the interval's start; not with ``rescore``) leaves out what the
        staging picked for another of the run's rubrics only (see :meth:`_wanted`)."""
        src, cfg, items = self.source, self.source_config, self.items
        id_col = src.c[cfg.id_column]
        done = self._scored(id_col, rubric_name, rubric_version, dag_run_id if rescore else None)
        if since is not None and not rescore:
            done = or_(done, not_(self._wanted(id_col, rubric_name, rubric_version, since)))
        if skip_errored:
            errored_in_run = exists().where(
                self.errors.c.response_id == id_col,
                self.errors.c.rubric_name == rubric_name,
                self.errors.c.rubric_version == rubric_version,
                self.errors.c.dag_run_id == dag_run_id,
            )
            done = or_(done, errored_in_run)
        columns: list[Any] = [id_col, src.c[cfg.question_column], src.c[cfg.response_column]]
        columns.append(src.c[cfg.context_column] if cfg.context_column else literal(None))
        columns += [src.c[name] for name in self._segment_names()]
        query = (
            select(*columns)
            .join(items, items.c.response_id == id_col)
            .where(items.c.run_key == ref.run_key, items.c.batch_index == ref.batch_index, not_(done))
            .order_by(id_col)
            .limit(READ_CHUNK)
        )
        segments = self._segment_names()
        last_id: Any = None
        while True:
            page = query if last_id is None else query.where(id_col > last_id)
            with errors_as("read batch"), self.engine.connect() as conn:
                rows = conn.execute(page).all()
            if not rows:
                return
            last_id = rows[-1][0]
            yield [
                ResponseItem(
                    response_id=row[0],
                    question=row[1],
                    response=row[2],
                    context=row[3],
                    segments={name: row[4 + i] for i, name in enumerate(segments)},
                )
                for row in rows
            ]
            if len(rows) < READ_CHUNK:
                return

    # --- load ------------------------------------------------------------------------------------

    def write(self, scores: Sequence[ScoreRecord], errors: Sequence[ErrorRecord]) -> None:
        """Upsert scores and errors in one transaction; a scored response loses its error row."""
        with errors_as("write results"), self.engine.begin() as conn:
            if scores:
                upsert(conn, self.scores, [_score_row(s) for s in scores])
                criterion_rows = [row for s in scores for row in _criterion_rows(s)]
                upsert(conn, self.criterion_scores, criterion_rows)
                for (name, version), ids in _group_ids(scores).items():
                    conn.execute(
                        delete(self.errors).where(
                            self.errors.c.rubric_name == name,
                            self.errors.c.rubric_version == version,
                            self.errors.c.response_id.in_(ids),
                        )
                    )
            if errors:
                upsert(conn, self.errors, [_error_row(e) for e in errors])

    # --- read back -------------------------------------------------------------------------------

    def run_totals(
        self, run_key: str, dag_run_id: str, rubric_name: str, rubric_version: str, *, since: dt.datetime | None = None
    ) -> dict[str, Any]:
        """What happened to every staged response of the run under one rubric, from the tables
        themselves, and the mean overall score it wrote. With ``since`` (the interval's start; not
        for a rescore), a response counts only if this run scored it, recorded an error for it, or
        it is still one this rubric wanted (:meth:`_wanted`): with several rubrics, the run's
        staging also holds responses only another rubric needed."""
        # aliases: the ``_wanted`` subqueries read the same tables and must not correlate with these
        items, scores, errors = self.items, self.scores.alias("run_scores"), self.errors.alias("run_errors")
        score_join = and_(
            scores.c.response_id == items.c.response_id,
            scores.c.rubric_name == rubric_name,
            scores.c.rubric_version == rubric_version,
        )
        error_join = and_(
            errors.c.response_id == items.c.response_id,
            errors.c.rubric_name == rubric_name,
            errors.c.rubric_version == rubric_version,
        )
        query = (
            select(
                func.count().label("extracted"),
                func.count(scores.c.response_id).label("scored"),
                func.coalesce(func.sum(_as_int(scores.c.cache_hit)), 0).label("from_cache"),
                func.count(errors.c.response_id).label("errors"),
                func.coalesce(func.sum(case((errors.c.kind == ErrorKind.BUDGET_EXHAUSTED.value, 1), else_=0)), 0).label(
                    "left_for_budget"
                ),
                func.coalesce(
                    func.sum(case((errors.c.kind == ErrorKind.MALFORMED_VERDICT.value, 1), else_=0)), 0
                ).label("malformed"),
                func.coalesce(func.sum(scores.c.input_tokens), 0).label("input_tokens"),
                func.coalesce(func.sum(scores.c.output_tokens), 0).label("output_tokens"),
                func.coalesce(func.sum(scores.c.cache_write_tokens), 0).label("cache_write_tokens"),
                func.coalesce(func.sum(scores.c.cache_read_tokens), 0).label("cache_read_tokens"),
                func.coalesce(func.sum(scores.c.cost_usd), 0.0).label("cost_usd"),
                func.avg(scores.c.overall).label("mean"),
            )
            .select_from(items)
            .outerjoin(scores, and_(score_join, scores.c.dag_run_id == dag_run_id))
            .outerjoin(errors, and_(error_join, errors.c.dag_run_id == dag_run_id))
            .where(items.c.run_key == run_key)
        )
        if since is not None:
            id_col = self.source.c[self.source_config.id_column]
            still_wanted = and_(
                not_(self._scored(id_col, rubric_name, rubric_version, None)),
                self._wanted(id_col, rubric_name, rubric_version, since),
            )
            query = query.outerjoin(self.source, id_col == items.c.response_id).where(
                or_(scores.c.response_id.is_not(None), errors.c.response_id.is_not(None), still_wanted)
            )
        with errors_as("read run totals"), self.engine.connect() as conn:
            row = conn.execute(query).one()._asdict()
        mean = row.pop("mean")
        totals: dict[str, Any] = {k: (float(v) if k == "cost_usd" else int(v)) for k, v in row.items()}
        totals["mean"] = round(float(mean), 4) if mean is not None else None
        totals["unaccounted"] = totals["extracted"] - totals["scored"] - totals["errors"]
        return totals

    def spent_usd(
        self, *, dag_run_id: str, day_start: dt.datetime, day_end: dt.datetime, rubric_names: Sequence[str]
    ) -> tuple[float, float]:
        """Dollars already spent by this run, and by every run of the suite on this day (by
        ``scored_at``): the suite's rubrics are its own in this warehouse (:mod:`judgeflow.suite`),
        so another suite's run with the same run id is not counted."""
        scores = self.scores
        query = select(
            func.coalesce(func.sum(case((scores.c.dag_run_id == dag_run_id, scores.c.cost_usd), else_=0.0)), 0.0),
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(scores.c.scored_at >= day_start, scores.c.scored_at < day_end),
                            scores.c.cost_usd,
                        ),
                        else_=0.0,
                    )
                ),
                0.0,
            ),
        ).where(scores.c.rubric_name.in_(rubric_names))
        with errors_as("read spend"), self.engine.connect() as conn:
            run_spent, day_spent = conn.execute(query).one()
        return float(run_spent), float(day_spent)

    def count_created(self, start: dt.datetime, end: dt.datetime) -> int:
        """How many source responses were created in [start, end): a sampled run's population."""
        created = self.source.c[self.source_config.created_at_column]
        query = select(func.count()).select_from(self.source).where(created >= start, created < end)
        with errors_as("count the interval's responses"), self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def segment_names(self) -> list[str]:
        """The configured segment columns the source table really has."""
        return self._segment_names()

    def rationales(self, response_ids: Sequence[Any], *, rubric_name: str, rubric_version: str) -> dict[str, str]:
        """The judge's rationale for each of these responses (keys as text), for alert examples."""
        scores = self.scores
        try:  # ids may arrive as text (from JSON); PostgreSQL will not compare integer = varchar
            python_type = scores.c.response_id.type.python_type
            ids = [python_type(rid) for rid in response_ids]
        except (NotImplementedError, TypeError, ValueError):
            ids = list(response_ids)
        query = select(scores.c.response_id, scores.c.rationale).where(
            scores.c.rubric_name == rubric_name,
            scores.c.rubric_version == rubric_version,
            scores.c.response_id.in_(ids),
        )
        with errors_as("read rationales"), self.engine.connect() as conn:
            return {str(rid): rationale for rid, rationale in conn.execute(query).all()}

    def record_run(self, row: dict[str, Any]) -> None:
        with errors_as("record run"), self.engine.begin() as conn:
            upsert(conn, self.runs, [row])

    def scores_frame(
        self,
        *,
        rubric_name: str,
        rubric_version: str,
        criteria: Sequence[str],
        start: dt.datetime,
        end: dt.datetime,
    ) -> Any:
        """Scores of responses created in [start, end) as a DataFrame: ``response_id``,
        ``created_at``, ``overall``, one column per criterion, and the segment columns."""
        import pandas as pd

        src, cfg, scores, crit = self.source, self.source_config, self.scores, self.criterion_scores
        id_col, created = src.c[cfg.id_column], src.c[cfg.created_at_column]
        in_window = and_(
            scores.c.rubric_name == rubric_name,
            scores.c.rubric_version == rubric_version,
            created >= start,
            created < end,
        )
        base = select(
            scores.c.response_id,
            created.label("created_at"),
            scores.c.overall,
            *[src.c[name] for name in self._segment_names()],
        ).join(src, id_col == scores.c.response_id)
        per_criterion = (
            select(crit.c.response_id, crit.c.criterion, crit.c.score)
            .join(
                scores,
                and_(
                    scores.c.response_id == crit.c.response_id,
                    scores.c.rubric_name == crit.c.rubric_name,
                    scores.c.rubric_version == crit.c.rubric_version,
                ),
            )
            .join(src, id_col == crit.c.response_id)
            .where(in_window)
        )
        with errors_as("read scores"), self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(base.where(in_window)).mappings().all())
            long = pd.DataFrame(conn.execute(per_criterion).mappings().all())
        columns = ["response_id", "created_at", "overall", *self._segment_names()]
        frame = frame if not frame.empty else pd.DataFrame(columns=columns)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        frame["overall"] = frame["overall"].astype(float)
        if not long.empty:
            wide = long.pivot(index="response_id", columns="criterion", values="score").astype(float)
            frame = frame.merge(wide, left_on="response_id", right_index=True, how="left")
        for criterion in criteria:
            if criterion not in frame.columns:
                frame[criterion] = pd.Series(dtype=float)
        return frame

    # --- helpers ---------------------------------------------------------------------------------

    def _unjudged(self, id_col: Any, rubric_name: str, rubric_version: str) -> ColumnElement[bool]:
        """No score, and no permanent error, for this rubric version."""
        permanent_error = exists().where(
            self.errors.c.response_id == id_col,
            self.errors.c.rubric_name == rubric_name,
            self.errors.c.rubric_version == rubric_version,
            self.errors.c.retryable == false(),
        )
        return and_(not_(self._scored(id_col, rubric_name, rubric_version, None)), not_(permanent_error))

    def _scored(self, id_col: Any, rubric_name: str, rubric_version: str, only_run: str | None) -> ColumnElement[bool]:
        conditions = [
            self.scores.c.response_id == id_col,
            self.scores.c.rubric_name == rubric_name,
            self.scores.c.rubric_version == rubric_version,
        ]
        if only_run is not None:
            conditions.append(self.scores.c.dag_run_id == only_run)
        return exists().where(*conditions)

    def _scored_by_rubric(self, id_col: Any, rubric_name: str) -> ColumnElement[bool]:
        """A score under any version of the rubric."""
        return exists().where(self.scores.c.response_id == id_col, self.scores.c.rubric_name == rubric_name)

    def _late_wanted(self, id_col: Any, rubric_name: str, rubric_version: str) -> ColumnElement[bool]:
        """A response from before the interval is judged when the rubric never scored it (any
        version) or this version has a retryable error for it."""
        retry = exists().where(
            self.errors.c.response_id == id_col,
            self.errors.c.rubric_name == rubric_name,
            self.errors.c.rubric_version == rubric_version,
            self.errors.c.retryable == true(),
        )
        return or_(not_(self._scored_by_rubric(id_col, rubric_name)), retry)

    def _wanted(self, id_col: Any, rubric_name: str, rubric_version: str, since: dt.datetime) -> ColumnElement[bool]:
        """Among a run's staged responses, those its staging picked for this rubric: no permanent
        error, and in the interval (created at or after ``since``) or wanted late. A run with several
        rubrics stages what any of them needs, so each rubric reads (and counts) only its own."""
        created = self.source.c[self.source_config.created_at_column]
        permanent_error = exists().where(
            self.errors.c.response_id == id_col,
            self.errors.c.rubric_name == rubric_name,
            self.errors.c.rubric_version == rubric_version,
            self.errors.c.retryable == false(),
        )
        late = self._late_wanted(id_col, rubric_name, rubric_version)
        return and_(not_(permanent_error), or_(created >= since, late))

    def _segment_names(self) -> list[str]:
        return [name for name in self.source_config.segment_columns if name in self.source.c]

    def _reflect_source(self) -> Any:
        """The source: for ``source.query``, a subquery with the named columns; else the source table's
        columns, and nothing else: keys, indexes and foreign keys are not
        judgeflow's business (reflecting them is slow on Snowflake, and DuckDB and fakesnow cannot).
        A missing table or column is a :class:`ConfigError` naming it; a missing SELECT grant a
        :class:`WarehouseError` naming the grant."""
        cfg = self.source_config
        if cfg.query:
            return self._query_source()
        where = self.engine.url.render_as_string(hide_password=True)
        with errors_as(f"read the columns of the source table {cfg.table!r} (the role needs SELECT on it)"):
            found = inspect(self.engine)
            if not found.has_table(cfg.table):
                raise ConfigError(f"source.table: table {cfg.table!r} not found in the warehouse ({where})")
            columns = found.get_columns(cfg.table)
        table = Table(cfg.table, self.metadata, *[Column(c["name"], c["type"]) for c in columns])
        required = [cfg.id_column, cfg.created_at_column, cfg.question_column, cfg.response_column]
        required += [cfg.context_column] if cfg.context_column else []
        missing = [name for name in required if name not in table.c]
        if missing:
            raise ConfigError(
                f"source: table {cfg.table!r} has no column(s) {', '.join(missing)} "
                f"(columns: {', '.join(table.c.keys())}); see source.*_column"
            )
        return table

    def _query_source(self) -> Any:
        """``source.query`` as a subquery whose columns carry the configured names and types. It is
        run once with no rows wanted (``WHERE 1 = 0``), so a missing table or column fails here,
        as a :class:`ConfigError` quoting the database, and not half-way through a run."""
        cfg = self.source_config
        id_type: Any = Integer() if cfg.id_type == "integer" else String(255)
        typed: list[tuple[str, Any]] = [
            (cfg.id_column, id_type),
            (cfg.created_at_column, DateTime(timezone=True)),
            (cfg.question_column, Text()),
            (cfg.response_column, Text()),
        ]
        typed += [(cfg.context_column, Text())] if cfg.context_column else []
        typed += [(name, String(200)) for name in cfg.segment_columns]
        names = [name for name, _ in typed]
        if len(set(names)) != len(names):
            raise ConfigError(f"source: the query's columns must be distinct, got {names}")
        statement = text(str(cfg.query).strip().rstrip(";")).columns(*[column(n, t) for n, t in typed])
        source = statement.subquery("source")
        try:
            with self.engine.connect() as conn:
                conn.execute(select(*source.c).where(false()))
        except DBAPIError as exc:
            lines = str(exc.orig).strip().splitlines() if exc.orig is not None else []
            reason = lines[0] if lines else str(exc)  # a driver error with no message: SQLAlchemy's own
            raise ConfigError(
                f"source.query: the query does not give the columns {names} "
                f"({self.engine.url.render_as_string(hide_password=True)}): {reason}"
            ) from exc
        return source


def _as_int(column: Any) -> Any:
    return case((column == true(), 1), else_=0)


def _score_row(score: ScoreRecord) -> dict[str, Any]:
    return {
        "response_id": score.response_id,
        "rubric_name": score.rubric_name,
        "rubric_version": score.rubric_version,
        "overall": score.overall,
        "rationale": "; ".join(f"{name}: {c.rationale}" for name, c in score.criteria.items())[:4000],
        "model": score.model,
        "input_tokens": score.usage.input_tokens,
        "output_tokens": score.usage.output_tokens,
        "cache_write_tokens": score.usage.cache_write_tokens,
        "cache_read_tokens": score.usage.cache_read_tokens,
        "cost_usd": score.cost_usd,
        "latency_ms": score.latency_ms,
        "cache_hit": score.cache_hit,
        "truncated": score.truncated,
        "dag_run_id": score.dag_run_id,
        "scored_at": score.scored_at,
    }


def _criterion_rows(score: ScoreRecord) -> list[dict[str, Any]]:
    return [
        {
            "response_id": score.response_id,
            "rubric_name": score.rubric_name,
            "rubric_version": score.rubric_version,
            "criterion": name,
            "score": c.score,
            "rationale": clip(c.rationale),
        }
        for name, c in score.criteria.items()
    ]


def _error_row(error: ErrorRecord) -> dict[str, Any]:
    return {
        "response_id": error.response_id,
        "rubric_name": error.rubric_name,
        "rubric_version": error.rubric_version,
        "kind": error.kind.value,
        "reason": clip(error.reason),
        "retryable": error.retryable,
        "attempts": error.attempts,
        "raw_reply": clip(error.raw_reply),
        "dag_run_id": error.dag_run_id,
        "recorded_at": error.recorded_at,
    }


def _group_ids(scores: Sequence[ScoreRecord]) -> dict[tuple[str, str], list[Any]]:
    grouped: dict[tuple[str, str], list[Any]] = {}
    for score in scores:
        grouped.setdefault((score.rubric_name, score.rubric_version), []).append(score.response_id)
    return grouped


__all__ = ["Warehouse"]
