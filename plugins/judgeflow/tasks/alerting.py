"""The alert lifecycle of one run and one rubric: which baseline the day is compared with, whether the
run may move what on-call knows, and what a backfill's last run sends.

The compare and alert tasks of :mod:`judgeflow.tasks.pipeline` call these, and so does the dev kit's
null-timeline benchmark (``judgeflow-dev bench-alerts``), so the false-alert rate it prints is the
DAG's own decision code on real statistics, not a model of it.

**Who may page.** Only a run for the newest interval judged so far (the newest ``interval_end`` of
this DAG and rubric version in ``judge_runs``, which the run's own summary has just written) moves
the alert state and pages. A run for an older interval (a rerun, a cleared task, a backfill, or
``airflow dags test`` of a past day, which is a new *manual* run) writes its comparisons and report
and says in its log what it would have said, marked historical. A second run of the newest interval
(a cleared task) finds the state already moved for that interval and moves nothing, so a day is never
counted twice nor paged twice. The decision uses the run type and the interval, never the clock.

**Backfills.** A run is part of a backfill when Airflow made it for one (run type ``backfill``) or
when its conf names the backfill's days: ``backfill_from`` and ``backfill_until`` (the first and last
day judged, ``YYYY-MM-DD``; pass them with ``airflow backfill create ... --dag-run-conf``). The run
whose interval starts on ``backfill_until`` is the backfill's last: when it ends it sends ONE digest
(days covered, regressions found in that history, a link). A backfill run without those keys sends
nothing and logs how to get the digest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from judgeflow.quality.alert_state import (
    AlertPlan,
    Level,
    OpenRegression,
    Reference,
    Rules,
    plan_alerts,
    regression_key,
)
from judgeflow.quality.reference import (
    CleanBaseline,
    clean_baseline,
    left_out_days,
    references_for,
    window_levels,
)
from judgeflow.quality.regression import RegressionReport, compare_windows
from judgeflow.quality.stats import CREATED_AT

if TYPE_CHECKING:
    import pandas as pd

    from judgeflow.config import AlertConfig, RunParams
    from judgeflow.storage.alert_store import AlertStore

log = logging.getLogger(__name__)

DAY = dt.timedelta(days=1)
BACKFILL_RUN_TYPE = "backfill"


@dataclass(frozen=True, slots=True)
class DayComparison:
    """The day against its clean baseline: the report, every key's level today, and the reference
    each of today's regressions was found against."""

    report: RegressionReport
    levels: dict[str, Level]
    references: dict[str, Reference]
    baseline: CleanBaseline

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": {k: dataclasses.astuple(v) for k, v in self.levels.items()},
            "references": {
                k: {"level": dataclasses.astuple(r.level), "start": r.start.isoformat(), "end": r.end.isoformat()}
                for k, r in self.references.items()
            },
            "left_out_days": [s.isoformat() for s, _ in self.baseline.left_out],
        }


def levels_from_json(data: Mapping[str, Any]) -> tuple[dict[str, Level], dict[str, Reference]]:
    levels = {k: Level(*v) for k, v in (data.get("levels") or {}).items()}
    references = {
        k: Reference(Level(*r["level"]), dt.datetime.fromisoformat(r["start"]), dt.datetime.fromisoformat(r["end"]))
        for k, r in (data.get("references") or {}).items()
    }
    return levels, references


def compare_day(
    frame: pd.DataFrame,
    *,
    alerts: AlertConfig,
    criteria: Sequence[str],
    segments: Sequence[str],
    current_start: dt.datetime,
    current_end: dt.datetime,
    excluded: Sequence[tuple[dt.datetime, dt.datetime]] = (),
    floor: dt.datetime | None = None,
    n_boot: int = 2000,
    unreferenced: Sequence[str] = (),
) -> DayComparison:
    """Compare the day with ``alerts.baseline_days`` clean days before it (see :func:`clean_baseline`).

    References are taken for today's regressions and for ``unreferenced``: watched regressions saved
    before references existed, which adopt today's clean baseline."""
    baseline = clean_baseline(
        frame, current_start=current_start, baseline_days=alerts.baseline_days, excluded=excluded, floor=floor
    )
    # The windows leave the excluded days out of baselines only: a small segment's pooled current
    # window keeps its recent days even when they are a regression's (judgeflow.quality.segments).
    since_floor = frame if floor is None else frame[frame[CREATED_AT] >= floor]
    reach = baseline.baseline_days + alerts.max_pool_days
    report = compare_windows(
        since_floor,
        left_out=left_out_days(current_start, excluded, days=reach),
        criteria=criteria,
        current_start=current_start,
        current_end=current_end,
        baseline_days=baseline.baseline_days,
        alpha=alerts.alpha,
        min_samples=alerts.min_samples,
        min_drop=alerts.min_drop,
        segment_columns=segments,
        n_boot=n_boot,
        max_pool_days=alerts.max_pool_days,
        power=alerts.power,
    )
    levels = window_levels(
        baseline.scores, criteria=criteria, start=current_start, end=current_end, segment_columns=segments
    )
    keys = [*(regression_key(c.metric, c.segment) for c in report.regressions), *unreferenced]
    references = references_for(
        baseline.scores,
        keys,
        criteria=criteria,
        baseline_start=report.baseline_start,
        current_start=current_start,
        segment_columns=segments,
    )
    return DayComparison(report, levels, references, baseline)


class Findings(NamedTuple):
    """Today's significant drops (key → difference), every key's level today, the reference of each drop."""

    regressed: dict[str, float]
    levels: dict[str, Level]
    references: dict[str, Reference]


def day_findings(
    comparison: Mapping[str, Any],
    *,
    threshold: float,
    rolling_days: int,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
) -> Findings:
    """From the compare task's output: today's significant drops (key → difference), every key's level
    today and the reference of each drop. A rolling average below ``threshold`` is a key of its own,
    measured against the threshold (its "reference")."""
    from judgeflow.quality.alerts import ROLLING_AVERAGE_KEY

    report = RegressionReport.from_json(comparison["report"])
    regressed = {regression_key(c.metric, c.segment): float(c.difference or 0.0) for c in report.regressions}
    levels, references = levels_from_json(comparison)
    average = comparison.get("rolling_average")
    if average is not None:
        average = float(average)
        levels[ROLLING_AVERAGE_KEY] = Level(average, average, average, int(comparison.get("rolling_count") or 0))
        references[ROLLING_AVERAGE_KEY] = Reference(
            Level(threshold, threshold, threshold, 0), interval_end - dt.timedelta(days=rolling_days), interval_start
        )
        if average < threshold:
            regressed[ROLLING_AVERAGE_KEY] = average - threshold
    return Findings(regressed, levels, references)


def rules_of(alerts: AlertConfig) -> Rules:
    return Rules(
        worsen_by=alerts.min_drop,
        recover_within=alerts.recover_within,
        recover_days=alerts.recover_days,
        open_after_days=alerts.open_after_days,
        remind_every_days=alerts.remind_every_days,
    )


@dataclass(frozen=True, slots=True)
class DayPlan:
    """Today's plan, what was known before it, and whether this interval had moved the state already."""

    plan: AlertPlan
    known: Mapping[str, OpenRegression]
    counted_already: bool


def plan_day(
    store: AlertStore,
    *,
    rubric_name: str,
    rubric_version: str,
    findings: Findings,
    rules: Rules,
    interval_end: dt.datetime,
) -> DayPlan:
    """Today's plan against the stored state. A second run of an interval that already moved the state
    (a cleared task of the newest run) plans nothing: the day was counted, on-call was told."""
    known = store.open_regressions(rubric_name, rubric_version)
    if any(row.moved_for is not None and row.moved_for >= interval_end for row in known.values()):
        return DayPlan(AlertPlan(ongoing=tuple(sorted(known)), state=known), known, True)
    plan = plan_alerts(
        known,
        findings.regressed,
        today=findings.levels,
        references=findings.references,
        rules=rules,
        interval_end=interval_end,
    )
    return DayPlan(plan, known, False)


def remember(
    store: AlertStore, *, rubric_name: str, rubric_version: str, plan: AlertPlan, interval_end: dt.datetime
) -> None:
    """Store the plan's state and close its recovered regressions into the history."""
    store.save_open_regressions(rubric_name, rubric_version, plan.state, closed=plan.closed, closed_at=interval_end)


@dataclass(frozen=True, slots=True)
class RunRole:
    """What a run may do with alerts: page (the newest interval), or nothing but a backfill's digest."""

    latest: bool
    backfill: bool
    digest: bool
    newest_end: dt.datetime | None

    def describe(self) -> str:
        if self.latest:
            return "the newest interval judged so far: may page"
        kind = "a backfill run" if self.backfill else "a past interval (rerun, clear or manual run)"
        digest = "; the backfill's last run: sends its digest" if self.digest else ""
        return f"{kind}: historical, never pages{digest}"


def run_role(
    *,
    run_type: str,
    params: RunParams,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    newest_end: dt.datetime | None,
) -> RunRole:
    """Decide from the run type, the run's conf and the interval (see the module's docstring)."""
    backfill = run_type == BACKFILL_RUN_TYPE or params.backfill_until is not None or params.backfill_from is not None
    latest = not backfill and (newest_end is None or interval_end >= newest_end)
    digest = backfill and params.backfill_until is not None and interval_start.date() == params.backfill_until
    if backfill and params.backfill_until is None:
        log.warning(
            "a backfill run without backfill_from/backfill_until in its conf: it never pages, and no digest "
            "will be sent (airflow backfill create ... --dag-run-conf "
            '\'{"backfill_from": "YYYY-MM-DD", "backfill_until": "YYYY-MM-DD"}\')'
        )
    return RunRole(latest=latest, backfill=backfill, digest=digest, newest_end=newest_end)


def backfill_days(params: RunParams, interval_start: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The first day and the day after the last of the run's backfill (``backfill_from`` defaults to its last day)."""
    until = params.backfill_until or interval_start.date()
    first = params.backfill_from or until
    start = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    return start, dt.datetime.combine(until, dt.time(), tzinfo=dt.UTC) + DAY


def replay_day(
    store: AlertStore,
    frame: pd.DataFrame,
    *,
    alerts: AlertConfig,
    criteria: Sequence[str],
    segments: Sequence[str],
    rubric_name: str,
    rubric_version: str,
    current_start: dt.datetime,
    current_end: dt.datetime,
    rolling_average: float | None = None,
    rolling_count: int = 0,
    n_boot: int = 2000,
) -> tuple[DayComparison, DayPlan]:
    """One day of the compare and alert tasks in one call, outside Airflow, as if Slack took every
    message: what the null-timeline benchmark and the view's sample warehouse replay day after day.
    ``frame`` holds the day's scores and enough days before it (the clean baseline may reach back)."""
    from judgeflow.quality.alerts import ROLLING_AVERAGE_KEY

    excluded, floor = store.baseline_exclusions(rubric_name, rubric_version, ignore=[ROLLING_AVERAGE_KEY])
    watched = store.open_regressions(rubric_name, rubric_version)
    compared = compare_day(
        frame,
        alerts=alerts,
        criteria=criteria,
        segments=segments,
        current_start=current_start,
        current_end=current_end,
        excluded=excluded,
        floor=floor,
        n_boot=n_boot,
        unreferenced=[key for key, row in watched.items() if row.reference is None],
    )
    comparison = {
        "report": compared.report.to_json(),
        "rolling_average": rolling_average,
        "rolling_count": rolling_count,
        **compared.to_json(),
    }
    findings = day_findings(
        comparison,
        threshold=alerts.min_rolling_average,
        rolling_days=alerts.rolling_days,
        interval_start=current_start,
        interval_end=current_end,
    )
    planned = plan_day(
        store,
        rubric_name=rubric_name,
        rubric_version=rubric_version,
        findings=findings,
        rules=rules_of(alerts),
        interval_end=current_end,
    )
    if not planned.counted_already:
        remember(
            store, rubric_name=rubric_name, rubric_version=rubric_version, plan=planned.plan, interval_end=current_end
        )
    return compared, planned
