"""Every read the view makes, aggregated in the database: pages touch kilobytes, not the score tables.

- trend and weekly distributions: ``judge_daily_scores`` (a few hundred rows a day);
- regressions and the per-segment table: ``judge_comparisons`` + ``judge_runs`` + ``judge_alert_state``;
- lowest-scoring responses: an ordered walk of ``ix_judge_scores_rubric_overall``, joined to the source;
- run health: ``judge_runs``; rubric versions: ``judge_runs`` and, when it exists, ``judge_calibrations``
  (as :func:`judgeflow.storage.schema.calibration_tables` defines it; ``judgeflow calibrate`` creates it).

"The week" is the 7 days ending at the latest day with scores, not the clock's week: the view shows
what the data says even when the scheduler has been down for days.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, MetaData, Table, case, func, inspect, select

from judgeflow.config import Settings
from judgeflow.quality.alerts import truncate
from judgeflow.quality.charts import TrendPoint, ValueCounts, WindowCounts
from judgeflow.quality.findings import Regression, Status, recent_regressions, status_of
from judgeflow.quality.redaction import redact
from judgeflow.quality.regression import MetricComparison
from judgeflow.quality.stats import OVERALL
from judgeflow.storage.daily_scores import DAY
from judgeflow.storage.engine import as_utc, errors_as
from judgeflow.storage.schema import calibration_tables
from judgeflow.storage.warehouse import Warehouse

_TABLE_RECHECK_S = 60.0


@dataclass(frozen=True, slots=True)
class Scope:
    """Which rubric version a page shows, and the latest day that has scores for it."""

    rubric_name: str
    rubric_version: str
    last_day: dt.date | None

    @property
    def this_week(self) -> tuple[dt.date, dt.date] | None:
        """``[start, end)`` of the 7 days ending at ``last_day``."""
        return None if self.last_day is None else (self.last_day - 6 * DAY, self.last_day + DAY)


def start_of(last_day: dt.date, days: int) -> dt.datetime:
    """Midnight UTC of the first of the ``days`` days ending at ``last_day``."""
    return dt.datetime.combine(last_day - (days - 1) * DAY, dt.time(), tzinfo=dt.UTC)


def aware(moment: Any) -> Any:
    """A timestamp read back from the warehouse, in UTC (SQLite drops the zone); other values as they are."""
    return as_utc(moment) if isinstance(moment, dt.datetime) else moment


@dataclass(frozen=True, slots=True)
class LowResponse:
    response_id: str
    created_at: dt.datetime
    overall: float
    segments: dict[str, Any]
    question: str
    response: str
    rationale: str


@dataclass(frozen=True, slots=True)
class RunHealth:
    run_key: str
    dag_run_id: str
    rubric_version: str
    interval_start: dt.datetime
    extracted: int
    scored: int
    errors: int
    from_cache: int
    unaccounted: int
    malformed: int
    left_for_budget: int
    cost_usd: float
    budget_usd: float | None
    sample_rate: float = 1.0
    """The suite's sampling rate for this run: staged and scored count a sample when it is under 1."""
    noise_kappa: float | None = None
    """Test-retest weighted kappa of the run's noise sample (``details.noise``); None without one."""
    noise_spread: float | None = None
    """Mean absolute spread, in points, between the two asks of the noise sample."""

    @property
    def coverage(self) -> float | None:
        return None if not self.extracted else self.scored / self.extracted

    @property
    def cache_hit_rate(self) -> float | None:
        return None if not self.scored else self.from_cache / self.scored


@dataclass(frozen=True, slots=True)
class RubricVersion:
    rubric_name: str
    rubric_version: str
    first_interval: dt.datetime
    last_interval: dt.datetime
    runs: int
    scored: int
    calibrations: list[dict[str, Any]] = field(default_factory=list)


class Reader:
    """The view's reads for one warehouse; safe to share between request threads (the engine pools)."""

    def __init__(self, warehouse: Warehouse, settings: Settings) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self._calibrations, _ = calibration_tables(MetaData())  # its own MetaData: one Reader per build
        self._calibrations_checked: tuple[bool, float] = (False, 0.0)
        self._sample_rate_checked: tuple[bool, float] = (False, 0.0)
        self._schema_ready = False

    # --- scope ----------------------------------------------------------------------------------

    def scope(self, rubric_name: str | None = None, rubric_version: str | None = None) -> Scope | None:
        """The asked-for version, else the version of the rubric's latest run; ``None`` with no runs
        (also before the first run has created judgeflow's tables)."""
        if not self.schema_ready():
            return None
        name = rubric_name or self.settings.rubric
        runs = self.warehouse.runs
        version = rubric_version
        if version is None:
            latest = (
                select(runs.c.rubric_version)
                .where(runs.c.rubric_name == name)
                .order_by(runs.c.finished_at.desc())
                .limit(1)
            )
            with self._connect() as conn:
                version = conn.execute(latest).scalar()
        if version is None:
            return None
        daily = self.warehouse.daily_scores
        with self._connect() as conn:
            last_day = conn.execute(
                select(func.max(daily.c.day)).where(daily.c.rubric_name == name, daily.c.rubric_version == version)
            ).scalar()
        return Scope(name, str(version), last_day)

    # --- trend and distributions ----------------------------------------------------------------

    def trend(self, scope: Scope) -> list[TrendPoint]:
        """Daily mean per metric over the last ``ui.trend_days`` days with scores."""
        if scope.last_day is None:
            return []
        daily = self.warehouse.daily_scores
        since = scope.last_day - (self.settings.ui.trend_days - 1) * DAY
        query = (
            select(daily.c.day, daily.c.metric, func.sum(daily.c.n), func.sum(daily.c.total))
            .where(*self._version(daily, scope), daily.c.day >= since)
            .group_by(daily.c.day, daily.c.metric)
            .order_by(daily.c.day, daily.c.metric)
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [TrendPoint(_date(day), metric, int(n), float(total) / int(n)) for day, metric, n, total in rows if n]

    def weekly_counts(self, scope: Scope) -> dict[str, WindowCounts]:
        """Per metric (``overall`` first), the value counts of last week (baseline) and this week (current)."""
        if scope.this_week is None:
            return {}
        start, end = scope.this_week
        daily = self.warehouse.daily_scores
        window = case((daily.c.day >= start, 1), else_=0).label("this_week")
        query = (
            select(daily.c.metric, window, daily.c.value, func.sum(daily.c.n))
            .where(*self._version(daily, scope), daily.c.day >= start - 7 * DAY, daily.c.day < end)
            .group_by(daily.c.metric, window, daily.c.value)
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        pairs: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for metric, this_week, value, n in rows:
            pairs.setdefault((metric, int(this_week)), []).append((float(value), float(n)))
        metrics = sorted({m for m, _ in pairs}, key=lambda m: (m != OVERALL, m))
        return {
            m: WindowCounts(
                ValueCounts.from_pairs(pairs.get((m, 0), [])), ValueCounts.from_pairs(pairs.get((m, 1), []))
            )
            for m in metrics
        }

    # --- regressions and segments ---------------------------------------------------------------

    def regressions(self, scope: Scope) -> list[Regression]:
        """Regressions found by recent runs, each with its state for on-call (see :mod:`judgeflow.quality.findings`)."""
        history = self._comparison_history(scope, days=self.settings.ui.regression_days)
        watched = self.warehouse.alerts.open_regressions(scope.rubric_name, scope.rubric_version)
        known = {key: row for key, row in watched.items() if row.is_open}  # pending: on-call has not heard yet
        return recent_regressions(history, known, worsen_by=self.settings.alerts.min_drop)

    def _comparison_history(self, scope: Scope, *, days: int) -> list[dict[str, Any]]:
        runs, comparisons = self.warehouse.runs, self.warehouse.comparisons
        since = start_of(scope.last_day, days) if scope.last_day else None
        query = (
            select(
                comparisons.c.metric,
                comparisons.c.segment,
                comparisons.c.status,
                comparisons.c.difference,
                runs.c.interval_start,
                runs.c.interval_end,
            )
            .join(runs, runs.c.run_key == comparisons.c.run_key)
            .where(*self._version(runs, scope))
        )
        if since is not None:
            query = query.where(runs.c.interval_end >= since)
        with self._connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        for row in rows:
            row["interval_start"], row["interval_end"] = aware(row["interval_start"]), aware(row["interval_end"])
        return rows

    def segment_rows(self, scope: Scope) -> tuple[str | None, list[MetricComparison]]:
        """The latest run's per-segment comparisons (what its report showed), worst difference first."""
        run_key, rows = self.latest_comparisons(scope)
        return run_key, [row for row in rows if row.segment is not None]

    def latest_comparisons(self, scope: Scope) -> tuple[str | None, list[MetricComparison]]:
        """Every comparison of the latest run that compared (all responses and each segment), worst first."""
        runs, comparisons = self.warehouse.runs, self.warehouse.comparisons
        latest = (
            select(runs.c.run_key)
            .where(
                *self._version(runs, scope),
                select(comparisons.c.run_key).where(comparisons.c.run_key == runs.c.run_key).exists(),
            )
            .order_by(runs.c.interval_end.desc())
            .limit(1)
        )
        with self._connect() as conn:
            run_key = conn.execute(latest).scalar()
            if run_key is None:
                return None, []
            details = conn.execute(select(comparisons.c.details).where(comparisons.c.run_key == run_key)).scalars()
            rows = [MetricComparison.from_json(d) for d in details if d]
        rows.sort(key=lambda r: (r.difference is None, r.difference or 0.0, r.label))
        return str(run_key), rows

    def status(self, scope: Scope, regressions: list[Regression] | None = None) -> Status:
        """The home page's first line: the worst regression on-call has open, with its reference figures.

        Built from what on-call knows (:meth:`regressions`) and the latest run's comparisons (the
        baseline it compared against), and the reference level the alert state froze for each open
        regression (issue 15's lifecycle), which the status line measures today against."""
        run_key, rows = self.latest_comparisons(scope)
        found = self.regressions(scope) if regressions is None else regressions
        watched = self.warehouse.alerts.open_regressions(scope.rubric_name, scope.rubric_version)
        frozen = {key: row.reference for key, row in watched.items() if row.reference is not None}
        return status_of(found, rows, run_key=run_key, references=frozen)

    # --- responses, health, rubric versions -----------------------------------------------------

    def lowest_responses(
        self, scope: Scope, *, segment: str | None = None, limit: int | None = None, since: dt.datetime | None = None
    ) -> list[LowResponse]:
        """The week's lowest overall scores with the judge's rationale, truncated and redacted as configured;
        only those of ``segment`` (``column=value``, a configured segment column) and created ``since``
        (within the week) when they are given."""
        if scope.this_week is None:
            return []
        wh, cfg, ui = self.warehouse, self.warehouse.source_config, self.settings.ui
        src, scores = wh.source, wh.scores
        start, end = (dt.datetime.combine(d, dt.time(), tzinfo=dt.UTC) for d in scope.this_week)
        start = max(start, since) if since is not None else start
        created = src.c[cfg.created_at_column]
        segments = wh.segment_names()
        query = (
            select(
                scores.c.response_id,
                created,
                scores.c.overall,
                scores.c.rationale,
                src.c[cfg.question_column],
                src.c[cfg.response_column],
                *[src.c[s] for s in segments],
            )
            .join(src, src.c[cfg.id_column] == scores.c.response_id)
            .where(*self._version(scores, scope), created >= start, created < end)
            .order_by(scores.c.overall, scores.c.response_id)
            .limit(limit or ui.lowest_responses)
        )
        if segment:
            column, value = parse_segment(segment, segments)
            query = query.where(src.c[column] == value)
        with self._connect() as conn:
            rows = conn.execute(query).all()
        return [
            LowResponse(
                response_id=str(row[0]),
                created_at=aware(row[1]),
                overall=float(row[2]),
                rationale=self._shown(row[3]),
                question=self._shown(row[4]),
                response=self._shown(row[5]),
                segments={name: row[6 + i] for i, name in enumerate(segments)},
            )
            for row in rows
        ]

    def run_health(self, scope: Scope) -> list[RunHealth]:
        """The rubric's latest runs, newest first: coverage, errors, cache hits, cost against the budget."""
        runs = self.warehouse.runs
        columns = [c for c in runs.c if c.name not in ("suite", "sample_rate")]
        columns += [runs.c.sample_rate] if self._has_sample_rate() else []
        query = (
            select(*columns)
            .where(runs.c.rubric_name == scope.rubric_name)
            .order_by(runs.c.interval_start.desc(), runs.c.finished_at.desc())
            .limit(self.settings.ui.runs_shown)
        )
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        budget = self.settings.budget.max_cost_usd_per_run
        return [
            RunHealth(
                run_key=r["run_key"],
                dag_run_id=r["dag_run_id"],
                rubric_version=r["rubric_version"],
                interval_start=aware(r["interval_start"]),
                extracted=int(r["extracted"]),
                scored=int(r["scored"]),
                errors=int(r["errors"]),
                from_cache=int(r["from_cache"]),
                unaccounted=int(r["unaccounted"]),
                malformed=int((r["details"] or {}).get("malformed", 0)),
                left_for_budget=int((r["details"] or {}).get("left_for_budget", 0)),
                cost_usd=float(r["cost_usd"]),
                budget_usd=budget,
                sample_rate=float(r["sample_rate"]) if r.get("sample_rate") is not None else 1.0,
                noise_kappa=_noise(r["details"], "kappa"),
                noise_spread=_noise(r["details"], "mean_abs_spread"),
            )
            for r in rows
        ]

    def version_choices(self) -> list[tuple[str, str]]:
        """``(rubric, version)`` of every version with runs, for the pages' picker (no counts, no calibrations)."""
        if not self.schema_ready():
            return []
        runs = self.warehouse.runs
        query = (
            select(runs.c.rubric_name, runs.c.rubric_version)
            .group_by(runs.c.rubric_name, runs.c.rubric_version)
            .order_by(runs.c.rubric_name, func.max(runs.c.interval_end).desc())
        )
        with self._connect() as conn:
            return [(str(name), str(version)) for name, version in conn.execute(query).all()]

    def rubric_versions(self) -> list[RubricVersion]:
        """Every rubric version that has runs, newest first, with its latest calibration per model and criterion."""
        if not self.schema_ready():
            return []
        runs = self.warehouse.runs
        query = (
            select(
                runs.c.rubric_name,
                runs.c.rubric_version,
                func.min(runs.c.interval_start),
                func.max(runs.c.interval_end),
                func.count(),
                func.sum(runs.c.scored),
            )
            .group_by(runs.c.rubric_name, runs.c.rubric_version)
            .order_by(runs.c.rubric_name, func.max(runs.c.interval_end).desc())
        )
        with self._connect() as conn:
            rows = conn.execute(query).all()
        calibrations = self.latest_calibrations()
        return [
            RubricVersion(
                rubric_name=name,
                rubric_version=version,
                first_interval=aware(first),
                last_interval=aware(last),
                runs=int(n),
                scored=int(scored or 0),
                calibrations=calibrations.get((name, version), []),
            )
            for name, version, first, last, n, scored in rows
        ]

    def latest_calibrations(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Latest ``judge_calibrations`` row per rubric, version, model and criterion; ``{}`` without the table."""
        if not self._has_calibrations():
            return {}
        table = self._calibrations
        partition = (table.c.rubric_name, table.c.rubric_version, table.c.model, table.c.criterion)
        rank = func.row_number().over(
            partition_by=partition, order_by=(table.c.calibrated_at.desc(), table.c.id.desc())
        )
        ranked = select(table, rank.label("rank")).subquery()
        query = (
            select(*[ranked.c[c.name] for c in table.columns])
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.rubric_name, ranked.c.rubric_version, ranked.c.model, ranked.c.criterion)
        )
        with self._connect() as conn:
            rows = conn.execute(query).mappings().all()
        found: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            found.setdefault((row["rubric_name"], row["rubric_version"]), []).append(dict(row))
        return found

    # --- helpers --------------------------------------------------------------------------------

    def schema_ready(self) -> bool:
        """Whether the tables the view reads exist. The DAG creates them on its first run; until then
        the warehouse holds only the source table and the view has nothing to show (not an error).
        The view never creates them itself: its database user may only read. Checked on every call
        until they appear (a cheap catalog lookup), then never again."""
        if not self._schema_ready:
            wh = self.warehouse
            needed = (wh.runs, wh.daily_scores, wh.comparisons, wh.alert_state, wh.scores)
            with errors_as("look up judgeflow's tables"):
                found = inspect(wh.engine)
                self._schema_ready = all(found.has_table(table.name) for table in needed)
        return self._schema_ready

    def _has_calibrations(self) -> bool:
        """Whether ``judge_calibrations`` exists: only once someone has run ``judgeflow calibrate``
        (absence is re-checked every minute, presence never again)."""
        present, checked = self._calibrations_checked
        if present or time.monotonic() - checked < _TABLE_RECHECK_S:
            return present
        with errors_as("look up judge_calibrations"):
            present = inspect(self.warehouse.engine).has_table(self._calibrations.name)
        self._calibrations_checked = (present, time.monotonic())
        return present

    def _has_sample_rate(self) -> bool:
        """Whether ``judge_runs`` has the ``sample_rate`` column yet: the first run of a judgeflow with
        suites adds it, and until then the view reads the older table as it is (it never alters one)."""
        present, checked = self._sample_rate_checked
        if present or time.monotonic() - checked < _TABLE_RECHECK_S:
            return present
        with errors_as("look up judge_runs' columns"):
            present = any(c["name"] == "sample_rate" for c in inspect(self.warehouse.engine).get_columns("judge_runs"))
        self._sample_rate_checked = (present, time.monotonic())
        return present

    def _shown(self, text: str | None) -> str:
        """Every text of a response or a verdict the view shows passes here: redacted, then truncated."""
        ui = self.settings.ui
        shown = text or ""
        return truncate(redact(shown) if ui.redact else shown, ui.text_chars)

    @staticmethod
    def _version(table: Table, scope: Scope) -> Sequence[Any]:
        return [table.c.rubric_name == scope.rubric_name, table.c.rubric_version == scope.rubric_version]

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection whose database errors surface as :class:`WarehouseError` (the app answers 503)."""
        with errors_as("read the view's data"), self.warehouse.engine.connect() as conn:
            yield conn


def parse_segment(segment: str, columns: Sequence[str]) -> tuple[str, str]:
    """``"topic=shipping"`` as ``("topic", "shipping")``; a column that is not a configured segment column
    of the source table is refused by name (the page answers 400), never put into SQL."""
    column, sep, value = segment.partition("=")
    if not sep or column not in columns:
        raise ValueError(
            f"segment {segment!r}: expected column=value with column one of {', '.join(columns) or 'none'}"
        )
    return column, value


def _noise(details: Any, key: str) -> float | None:
    noise = (details or {}).get("noise") or {}
    value = noise.get(key)
    return None if value is None else float(value)


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


__all__ = ["LowResponse", "Reader", "Regression", "RubricVersion", "RunHealth", "Scope", "Status", "parse_segment"]
