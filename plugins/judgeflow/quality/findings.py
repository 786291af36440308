"""What recent runs found: each regression with its state for on-call, for the UI view.

Pure: :class:`judgeflow.storage.view_reads.Reader` hands over the comparison rows of recent runs
(``judge_comparisons`` joined to ``judge_runs``) and what on-call was told (``judge_alert_state``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from judgeflow.quality.alert_state import OpenRegression, Reference, regression_key
from judgeflow.quality.regression import MetricComparison
from judgeflow.quality.stats import OVERALL


@dataclass(frozen=True, slots=True)
class Regression:
    key: str
    metric: str
    segment: str | None
    state: str  # open | worsening | recovered
    first_found: dt.datetime  # start of the first and the last run's interval that found it
    last_found: dt.datetime
    latest_difference: float | None
    announced_difference: float | None


def recent_regressions(
    history: list[dict[str, Any]], known: dict[str, OpenRegression], *, worsen_by: float
) -> list[Regression]:
    """Regressions found by recent runs, each with its state for on-call.

    ``open``: on-call was told and it has not recovered (or the latest run still finds it and
    the alert has not gone out yet); ``worsening``: open, and announced again since it opened
    because it dropped further by ``worsen_by`` (``alerts.min_drop``); ``recovered``: found recently,
    no longer open. Open alerts without comparisons in the window (the rolling average, old
    regressions) are listed too: on-call was told about them and they have not recovered.
    """
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in history:
        by_key.setdefault(regression_key(row["metric"], row["segment"] or None), []).append(row)
    found = [_without_history(opened) for key, opened in known.items() if key not in by_key]
    latest_run = max((row["interval_end"] for row in history), default=None)
    for key, rows in by_key.items():
        hits = [r for r in rows if r["status"] == "regression"]
        if not hits and key not in known:
            continue
        latest = max(rows, key=lambda r: r["interval_end"])
        state = _state(
            key, rows, known, worsen_by=worsen_by, still_found=latest["interval_end"] == latest_run and latest in hits
        )
        dated = hits or rows
        found.append(
            Regression(
                key=key,
                metric=latest["metric"],
                segment=latest["segment"] or None,
                state=state,
                first_found=min(r["interval_start"] for r in dated),
                last_found=max(r["interval_start"] for r in dated),
                latest_difference=latest["difference"],
                announced_difference=known[key].difference if key in known else None,
            )
        )
    return _ordered(found)


def _ordered(found: list[Regression]) -> list[Regression]:
    order = {"worsening": 0, "open": 1, "recovered": 2}
    return sorted(found, key=lambda r: (order[r.state], r.latest_difference or 0.0, r.key))


def _without_history(opened: OpenRegression) -> Regression:
    """An alert on-call still has open with no comparison row in the window: the rolling average
    below its threshold (never a comparison), or a regression opened before ``regression_days``
    whose comparisons have since aged out. Shown as ``open`` since the run that opened it."""
    metric, _, segment = opened.key.partition(" in ")
    return Regression(
        key=opened.key,
        metric=metric,
        segment=segment or None,
        state="open",
        first_found=opened.opened_at,
        last_found=opened.opened_at,
        latest_difference=None,
        announced_difference=opened.difference,
    )


def _state(key: str, rows: list[dict[str, Any]], known: dict[str, Any], *, worsen_by: float, still_found: bool) -> str:
    if key not in known:
        return "open" if still_found else "recovered"
    opened = known[key]
    at_opening = [r["difference"] for r in rows if r["interval_end"] == opened.opened_at and r["difference"]]
    dropped_since = bool(at_opening) and opened.difference <= at_opening[0] - worsen_by
    return "worsening" if dropped_since else "open"


@dataclass(frozen=True, slots=True)
class Status:
    """What the view says first: is a regression open, which (what and where), since when, against what.

    ``regression`` is the worst open one (worsening before open, largest drop first), ``None`` when
    on-call has nothing open; ``reference`` its comparison in the latest run (baseline and current
    mean, n, 95% CI) when that run compared it; ``overall`` the latest run's comparison of all
    responses on the overall score, the baseline figures when nothing is open."""

    regression: Regression | None
    open_count: int
    reference: MetricComparison | None
    overall: MetricComparison | None
    run_key: str | None
    frozen: Reference | None = None
    """The level the worst regression dropped from, frozen in the alert state when on-call was told: today
    is measured against it (not against a rolling baseline that fills with the bad days)."""

    @property
    def state(self) -> str:
        """``regression`` | ``clear`` | ``no comparisons`` (no run has compared windows yet)."""
        if self.regression is not None:
            return "regression"
        return "clear" if self.run_key is not None else "no comparisons"


def reference_of(regression: Regression, comparisons: list[MetricComparison]) -> MetricComparison | None:
    """The regression's row among a run's comparisons (same metric, same segment), if that run compared it."""
    return next(
        (c for c in comparisons if c.metric == regression.metric and (c.segment or None) == regression.segment), None
    )


def status_of(
    regressions: list[Regression],
    comparisons: list[MetricComparison],
    *,
    run_key: str | None,
    references: dict[str, Reference] | None = None,
) -> Status:
    """The status line's facts from the listed regressions (already worst first), the latest run's
    comparisons, and the frozen reference of each regression the alert state keeps (by key)."""
    still_open = [r for r in regressions if r.state != "recovered"]
    worst = still_open[0] if still_open else None
    overall = next((c for c in comparisons if c.metric == OVERALL and c.segment is None), None)
    return Status(
        regression=worst,
        open_count=len(still_open),
        reference=None if worst is None else reference_of(worst, comparisons),
        overall=overall,
        run_key=run_key,
        frozen=None if worst is None else (references or {}).get(worst.key),
    )
