"""Keep ``judge_daily_scores`` in step with the scores: one ``DELETE`` + ``INSERT ... SELECT`` per refresh.

The UI view's trend and weekly distributions read this small table instead of aggregating the
criterion scores of millions of responses on every page view. ``summarize_run`` refreshes the days
its run touched (the ``created_at`` days of the responses it staged, so late, retried and rescored
responses land in the right day); ``judgeflow rollup`` rebuilds any range, for a warehouse that
had scores before the view existed. Idempotent: a refresh replaces the rows of its days.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Float, Numeric, and_, cast, delete, func, literal, select, union_all

from judgeflow.quality.stats import OVERALL
from judgeflow.storage.dialects import utc_day
from judgeflow.storage.engine import errors_as
from judgeflow.storage.warehouse import Warehouse

log = logging.getLogger(__name__)

DAY = dt.timedelta(days=1)


def refresh_daily_scores(
    warehouse: Warehouse, *, rubric_name: str, rubric_version: str, start: dt.date, end: dt.date
) -> int:
    """Recompute the rows of days ``[start, end)`` for one rubric version; returns how many rows now exist."""
    table, src, cfg = warehouse.daily_scores, warehouse.source, warehouse.source_config
    created = src.c[cfg.created_at_column]
    begin = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    finish = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC)
    day = _utc_day(warehouse, created).label("day")
    in_window = and_(created >= begin, created < finish)  # as every other window in the warehouse

    scores, crit = warehouse.scores, warehouse.criterion_scores
    overall_value = cast(func.round(cast(scores.c.overall, Numeric), 2), Float).label("value")
    overall = (
        select(day, literal(OVERALL).label("metric"), overall_value, func.count().label("n"))
        .add_columns(func.sum(scores.c.overall).label("total"))
        .join(src, src.c[cfg.id_column] == scores.c.response_id)
        .where(scores.c.rubric_name == rubric_name, scores.c.rubric_version == rubric_version, in_window)
        .group_by(day, overall_value)
    )
    crit_value = cast(crit.c.score, Float).label("value")
    criteria = (
        select(day, crit.c.criterion.label("metric"), crit_value, func.count().label("n"))
        .add_columns(cast(func.sum(crit.c.score), Float).label("total"))
        .join(src, src.c[cfg.id_column] == crit.c.response_id)
        .where(crit.c.rubric_name == rubric_name, crit.c.rubric_version == rubric_version, in_window)
        .group_by(day, crit.c.criterion, crit_value)
    )
    rows = union_all(overall, criteria).subquery()
    insert = table.insert().from_select(
        ["rubric_name", "rubric_version", "day", "metric", "value", "n", "total"],
        select(
            literal(rubric_name), literal(rubric_version), rows.c.day, rows.c.metric, rows.c.value, rows.c.n
        ).add_columns(rows.c.total),
    )
    mine = and_(table.c.rubric_name == rubric_name, table.c.rubric_version == rubric_version)
    with errors_as("refresh daily scores"), warehouse.engine.begin() as conn:
        conn.execute(delete(table).where(mine, table.c.day >= start, table.c.day < end))
        conn.execute(insert)
        count = conn.execute(
            select(func.count()).select_from(table).where(mine, table.c.day >= start, table.c.day < end)
        ).scalar_one()
    log.info("judge_daily_scores: %d rows for %s %s, days [%s, %s)", count, rubric_name, rubric_version, start, end)
    return int(count)


def refresh_for_run(warehouse: Warehouse, *, run_key: str, rubric_name: str, rubric_version: str) -> int:
    """Refresh the days of the responses this run staged (nothing when it staged none)."""
    items, src, cfg = warehouse.items, warehouse.source, warehouse.source_config
    created = src.c[cfg.created_at_column]
    span = (
        select(func.min(created), func.max(created))
        .join(items, items.c.response_id == src.c[cfg.id_column])
        .where(items.c.run_key == run_key)
    )
    with errors_as("read the run's days"), warehouse.engine.connect() as conn:
        first, last = conn.execute(span).one()
    if first is None:
        return 0
    start, end = _as_day(first), _as_day(last) + DAY
    return refresh_daily_scores(warehouse, rubric_name=rubric_name, rubric_version=rubric_version, start=start, end=end)


def _utc_day(warehouse: Warehouse, created: Any) -> Any:
    """The UTC calendar day of a timestamp, in SQL, whatever the session's time zone."""
    return utc_day(created, warehouse.engine.dialect.name)


def _as_day(moment: Any) -> dt.date:
    if isinstance(moment, str):  # SQLite without declared types
        moment = dt.datetime.fromisoformat(moment)
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
        return moment.date()
    return moment


__all__ = ["refresh_daily_scores", "refresh_for_run"]
