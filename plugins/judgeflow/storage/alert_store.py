"""``judge_comparisons``, ``judge_alert_state`` and ``judge_alert_history``: what each run compared,
what on-call knows, and the regressions that closed.

The decisions live in :mod:`judgeflow.quality` (pure); this module only reads and writes their rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, delete, func, select

from judgeflow.errors import ConfigError
from judgeflow.quality.alert_state import Level, OpenRegression, Reference, Stage
from judgeflow.storage.engine import as_utc, errors_as, upsert

FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An open regression accepted as the new normal: by whom, when, why."""

    rubric_name: str
    rubric_version: str
    regression: str
    since: dt.datetime
    reference_mean: float | None
    difference: float
    by: str
    at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class HistoryDay:
    """One judged day of a range: its run and the regressions its comparison found."""

    interval_start: dt.datetime
    run_key: str
    regressions: tuple[str, ...]


class AlertStore:
    """Reads and writes the comparison rows, the alert state and its history over the warehouse's engine."""

    def __init__(
        self,
        engine: Engine,
        comparisons: Table,
        alert_state: Table,
        history: Table | None = None,
        *,
        runs: Table | None = None,
    ) -> None:
        self.engine = engine
        self.comparisons = comparisons
        self.alert_state = alert_state
        self.history = history
        self.runs = runs

    def record_comparisons(
        self, *, run_key: str, rubric_name: str, rubric_version: str, rows: list[dict[str, Any]]
    ) -> None:
        """Replace the run's comparison rows (a rerun of the step writes them again, not twice)."""
        table = self.comparisons
        stored = [
            {
                "run_key": run_key,
                "rubric_name": rubric_name,
                "rubric_version": rubric_version,
                "metric": row["metric"],
                "segment": row.get("segment") or "",
                "status": str(row["status"]),
                "baseline_n": int(row["baseline_n"]),
                "current_n": int(row["current_n"]),
                "difference": row.get("difference"),
                "p_value": row.get("p_value"),
                "details": row,
            }
            for row in rows
        ]
        with errors_as("record comparisons"), self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.run_key == run_key))
            if stored:
                conn.execute(table.insert(), stored)

    def open_regressions(self, rubric_name: str, rubric_version: str) -> dict[str, OpenRegression]:
        """Every regression being watched (pending or open) under this rubric version."""
        table = self.alert_state
        query = select(table).where(table.c.rubric_name == rubric_name, table.c.rubric_version == rubric_version)
        with errors_as("read alert state"), self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return {row["regression"]: _from_row(row) for row in rows}

    def watched(self, rubric_name: str) -> list[tuple[str, OpenRegression]]:
        """Every regression watched under any version of the rubric, with its version."""
        table = self.alert_state
        query = select(table).where(table.c.rubric_name == rubric_name).order_by(table.c.rubric_version)
        with errors_as("read alert state"), self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [(row["rubric_version"], _from_row(row)) for row in rows]

    def save_open_regressions(
        self,
        rubric_name: str,
        rubric_version: str,
        open_now: Mapping[str, OpenRegression],
        *,
        closed: Mapping[str, OpenRegression] | None = None,
        closed_at: dt.datetime | None = None,
    ) -> None:
        """Store what on-call now knows, and the regressions that recovered, in one transaction."""
        table = self.alert_state
        rows = [{"rubric_name": rubric_name, "rubric_version": rubric_version, **_to_row(r)} for r in open_now.values()]
        ended = [  # a day runs back from the interval's end: the first day back ends the regression
            _history_row(rubric_name, rubric_version, r, outcome="recovered", ended_at=_first_day_back(r, closed_at))
            for r in (closed or {}).values()
        ]
        with errors_as("save alert state"), self.engine.begin() as conn:
            conn.execute(
                delete(table).where(table.c.rubric_name == rubric_name, table.c.rubric_version == rubric_version)
            )
            if rows:
                conn.execute(table.insert(), rows)
            if ended:
                upsert(conn, self._history(), ended)

    def baseline_exclusions(
        self, rubric_name: str, rubric_version: str, *, ignore: Iterable[str] = ()
    ) -> tuple[list[tuple[dt.datetime, dt.datetime]], dt.datetime | None]:
        """The days later baselines leave out (regressions open now or recovered since), and the floor
        an accepted level shift sets (baselines start no earlier than its first day)."""
        skip = set(ignore)
        excluded = [
            (row.down_since, FAR_FUTURE)
            for key, row in self.open_regressions(rubric_name, rubric_version).items()
            if key not in skip
        ]
        history = self._history()
        query = select(history.c.regression, history.c.started_at, history.c.ended_at, history.c.outcome).where(
            history.c.rubric_name == rubric_name, history.c.rubric_version == rubric_version
        )
        floor: dt.datetime | None = None
        with errors_as("read alert history"), self.engine.connect() as conn:
            for key, started, ended, outcome in conn.execute(query):
                if key in skip:
                    continue
                if outcome == "accepted":
                    floor = max(floor or as_utc(started), as_utc(started))
                else:
                    excluded.append((as_utc(started), as_utc(ended)))
        return excluded, floor

    def accept(
        self, rubric_name: str, rubric_version: str | None, regression: str, *, by: str, reason: str, at: dt.datetime
    ) -> Accepted:
        """Close an open regression as the new normal: later baselines start at its first day.

        ``rubric_version`` may be left out when one version of the rubric has it open. Raises
        :class:`ConfigError` naming what is open when the regression is not."""
        table = self.alert_state
        query = select(table).where(table.c.rubric_name == rubric_name, table.c.regression == regression)
        if rubric_version:
            query = query.where(table.c.rubric_version == rubric_version)
        with errors_as("accept a regression"), self.engine.begin() as conn:
            rows = [r for r in conn.execute(query).mappings().all() if r["status"] != Stage.PENDING]
            if len(rows) != 1:
                raise ConfigError(self._not_open(conn, rubric_name, rubric_version, regression, len(rows)))
            row, item = rows[0], _from_row(rows[0])
            conn.execute(
                delete(table).where(
                    table.c.rubric_name == rubric_name,
                    table.c.rubric_version == row["rubric_version"],
                    table.c.regression == regression,
                )
            )
            done = _history_row(rubric_name, row["rubric_version"], item, outcome="accepted", ended_at=at)
            upsert(conn, self._history(), [{**done, "accepted_by": by, "accepted_at": at, "reason": reason}])
        reference = item.reference.level.mean if item.reference else None
        return Accepted(
            rubric_name, row["rubric_version"], regression, item.down_since, reference, item.difference, by, at, reason
        )

    def _not_open(self, conn: Any, rubric: str, version: str | None, regression: str, found: int) -> str:
        table = self.alert_state
        query = select(table.c.rubric_version, table.c.regression).where(
            table.c.rubric_name == rubric, (table.c.status.is_(None)) | (table.c.status == Stage.OPEN.value)
        )
        listed = sorted(f"{r} ({v})" for v, r in conn.execute(query))
        which = f"rubric {rubric}" + (f" version {version}" if version else "")
        if found > 1:
            return f"{regression!r} is open under several versions of {which}: name one with --version: {listed}"
        return f"no open regression {regression!r} in judge_alert_state for {which}; open: {listed or 'none'}"

    def newest_interval_end(self, dag_id: str, rubric_name: str, rubric_version: str) -> dt.datetime | None:
        """The end of the newest interval this DAG has judged under the rubric version (``judge_runs``)."""
        runs = self._runs()
        query = select(func.max(runs.c.interval_end)).where(
            runs.c.dag_id == dag_id, runs.c.rubric_name == rubric_name, runs.c.rubric_version == rubric_version
        )
        with errors_as("read the newest judged interval"), self.engine.connect() as conn:
            newest = conn.execute(query).scalar_one_or_none()
        return None if newest is None else as_utc(newest)

    def judged_days(
        self, dag_id: str, rubric_name: str, rubric_version: str, *, start: dt.datetime, end: dt.datetime
    ) -> list[HistoryDay]:
        """The runs of ``[start, end)`` (newest row per interval) with the regressions each compared found."""
        runs, comparisons = self._runs(), self.comparisons
        query = (
            select(runs.c.interval_start, runs.c.run_key, runs.c.finished_at)
            .where(
                runs.c.dag_id == dag_id,
                runs.c.rubric_name == rubric_name,
                runs.c.rubric_version == rubric_version,
                runs.c.interval_start >= start,
                runs.c.interval_start < end,
            )
            .order_by(runs.c.interval_start, runs.c.finished_at)
        )
        with errors_as("read a backfill's history"), self.engine.connect() as conn:
            newest = {as_utc(s): key for s, key, _ in conn.execute(query)}
            found = conn.execute(
                select(comparisons.c.run_key, comparisons.c.metric, comparisons.c.segment).where(
                    comparisons.c.run_key.in_(list(newest.values())), comparisons.c.status == "regression"
                )
            ).all()
        by_run: dict[str, list[str]] = {}
        for run_key, metric, segment in found:
            by_run.setdefault(run_key, []).append(f"{metric} in {segment}" if segment else metric)
        return [HistoryDay(s, k, tuple(sorted(by_run.get(k, ())))) for s, k in sorted(newest.items())]

    def _history(self) -> Table:
        if self.history is None:
            raise RuntimeError("this AlertStore was built without judge_alert_history")
        return self.history

    def _runs(self) -> Table:
        if self.runs is None:
            raise RuntimeError("this AlertStore was built without judge_runs")
        return self.runs


def _first_day_back(item: OpenRegression, closed_at: dt.datetime | None) -> dt.datetime:
    end = closed_at or item.moved_for or item.opened_at
    return end - dt.timedelta(days=max(item.back_days, 1))


def _from_row(row: Any) -> OpenRegression:
    reference = None
    if row.get("reference_mean") is not None and row.get("reference_start") is not None:
        level = Level(
            float(row["reference_mean"]),
            float(row["reference_low"]),
            float(row["reference_high"]),
            int(row["reference_n"] or 0),
        )
        reference = Reference(level, as_utc(row["reference_start"]), as_utc(row["reference_end"]))
    return OpenRegression(
        key=row["regression"],
        difference=float(row["difference"]),
        opened_at=as_utc(row["opened_at"]),
        reference=reference,
        stage=Stage(row.get("status") or Stage.OPEN),
        last_told_at=as_utc(row["last_told_at"]) if row.get("last_told_at") else None,
        back_days=int(row.get("back_days") or 0),
        seen_days=int(row.get("seen_days") or 1),
        moved_for=as_utc(row["moved_for"]) if row.get("moved_for") else None,
    )


def _to_row(item: OpenRegression) -> dict[str, Any]:
    ref = item.reference
    return {
        "regression": item.key,
        "difference": item.difference,
        "opened_at": item.opened_at,
        "status": item.stage.value,
        "reference_mean": ref.level.mean if ref else None,
        "reference_low": ref.level.low if ref else None,
        "reference_high": ref.level.high if ref else None,
        "reference_n": ref.level.n if ref else None,
        "reference_start": ref.start if ref else None,
        "reference_end": ref.end if ref else None,
        "last_told_at": item.last_told_at,
        "back_days": item.back_days,
        "seen_days": item.seen_days,
        "moved_for": item.moved_for,
    }


def _history_row(
    rubric_name: str, rubric_version: str, item: OpenRegression, *, outcome: str, ended_at: dt.datetime
) -> dict[str, Any]:
    return {
        "rubric_name": rubric_name,
        "rubric_version": rubric_version,
        "regression": item.key,
        "started_at": item.down_since,
        "ended_at": ended_at,
        "outcome": outcome,
        "reference_mean": item.reference.level.mean if item.reference else None,
        "difference": item.difference,
        "accepted_by": None,
        "accepted_at": None,
        "reason": None,
    }
