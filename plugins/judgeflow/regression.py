"""Did quality drop? Compare today's scores with the days before, metric by metric.

Pure functions over a DataFrame of scores (one row per judged response: ``response_id``,
``created_at`` as tz-aware UTC, ``overall``, one float column per rubric criterion, optional
segment columns). No I/O and no clock: every time comes in as an argument, so a rerun of an old
interval gives the same report.

The comparison is split in steps so later statistics slot in without reshaping callers:

- :func:`_split_windows` cuts the frame into the baseline and current windows;
- :func:`_compare_metric` turns two samples into one :class:`MetricComparison` (bootstrap CIs and
  effect sizes would be computed here, as new fields);
- :func:`_classify` maps numbers to a :class:`ComparisonStatus` given a :class:`_Rule`
  (Benjamini-Hochberg would adjust the p-values across metrics, then classify again);
- :func:`compare_windows` loops over metrics (a per-segment loop would wrap it).

A regression is a value in the report, not an exception: whether it fails a run is the caller's call.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

OVERALL = "overall"
"""The metric name of the weighted overall score; always compared first."""

CREATED_AT = "created_at"


class ComparisonStatus(StrEnum):
    """What one metric's comparison concluded."""

    NOT_ENOUGH_DATA = "not_enough_data"
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    STABLE = "stable"

    @property
    def is_regression(self) -> bool:
        return self is ComparisonStatus.REGRESSION

    @property
    def is_improvement(self) -> bool:
        return self is ComparisonStatus.IMPROVEMENT

    @property
    def has_enough_data(self) -> bool:
        return self is not ComparisonStatus.NOT_ENOUGH_DATA


class _Rule(NamedTuple):
    """The thresholds that turn numbers into a status (from :class:`judgeflow.config.AlertConfig`)."""

    alpha: float
    min_samples: int
    min_drop: float


class _Windows(NamedTuple):
    baseline: pd.DataFrame
    current: pd.DataFrame


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric, baseline window vs current window.

    Means, difference and p-value are ``None`` when a window has no values for the metric (the
    p-value also when the test is undefined). ``difference`` is ``current_mean - baseline_mean``, on
    the rubric's scale: negative means worse.
    """

    metric: str
    baseline_n: int
    baseline_mean: float | None
    current_n: int
    current_mean: float | None
    difference: float | None
    p_value: float | None
    status: ComparisonStatus

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline_n": self.baseline_n,
            "baseline_mean": self.baseline_mean,
            "current_n": self.current_n,
            "current_mean": self.current_mean,
            "difference": self.difference,
            "p_value": self.p_value,
            "status": self.status.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricComparison:
        return cls(**{**data, "status": ComparisonStatus(data["status"])})


@dataclass(frozen=True, slots=True)
class RegressionReport:
    """Every metric's comparison for one interval, with the windows and thresholds that produced it.

    Small enough for XCom: numbers, metric names and ISO timestamps, never response texts.
    """

    current_start: dt.datetime
    current_end: dt.datetime
    baseline_start: dt.datetime
    alpha: float
    min_samples: int
    min_drop: float
    comparisons: tuple[MetricComparison, ...]

    @property
    def regressions(self) -> tuple[MetricComparison, ...]:
        return tuple(c for c in self.comparisons if c.status.is_regression)

    @property
    def has_regression(self) -> bool:
        return any(c.status.is_regression for c in self.comparisons)

    def get(self, metric: str) -> MetricComparison | None:
        """The comparison of ``metric``, or ``None`` if it was not compared."""
        return next((c for c in self.comparisons if c.metric == metric), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "current_start": self.current_start.isoformat(),
            "current_end": self.current_end.isoformat(),
            "baseline_start": self.baseline_start.isoformat(),
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "min_drop": self.min_drop,
            "comparisons": [c.to_json() for c in self.comparisons],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RegressionReport:
        return cls(
            current_start=dt.datetime.fromisoformat(data["current_start"]),
            current_end=dt.datetime.fromisoformat(data["current_end"]),
            baseline_start=dt.datetime.fromisoformat(data["baseline_start"]),
            alpha=float(data["alpha"]),
            min_samples=int(data["min_samples"]),
            min_drop=float(data["min_drop"]),
            comparisons=tuple(MetricComparison.from_json(c) for c in data["comparisons"]),
        )


def compare_windows(
    scores: pd.DataFrame,
    *,
    criteria: Sequence[str],
    current_start: dt.datetime,
    current_end: dt.datetime,
    baseline_days: int,
    alpha: float,
    min_samples: int,
    min_drop: float,
) -> RegressionReport:
    """Compare ``[current_start, current_end)`` with the ``baseline_days`` days just before it.

    ``overall`` and each criterion get a two-sided Mann-Whitney U test (scores are small ordinal
    integers, far from normal) and a status: a change counts only when it is both at least
    ``min_drop`` on the rubric's scale and significant at ``alpha``; a window with fewer than
    ``min_samples`` values says ``not_enough_data`` rather than guess. Missing (NaN) values of a
    metric are left out of that metric only.

    Raises ``ValueError`` for naive datetimes, ``current_end <= current_start`` or missing columns.
    """
    _require_aware(current_start=current_start, current_end=current_end)
    if current_end <= current_start:
        raise ValueError(f"current_end {current_end} must be after current_start {current_start}")
    if baseline_days < 1:
        raise ValueError(f"baseline_days must be at least 1, got {baseline_days}")
    metrics = [OVERALL, *(c for c in criteria if c != OVERALL)]
    _require_columns(scores, [CREATED_AT, *metrics])

    baseline_start = current_start - dt.timedelta(days=baseline_days)
    windows = _split_windows(
        scores, baseline_start=baseline_start, current_start=current_start, current_end=current_end
    )
    rule = _Rule(alpha=alpha, min_samples=min_samples, min_drop=min_drop)
    comparisons = tuple(
        _compare_metric(
            metric,
            baseline=_values(windows.baseline, metric),
            current=_values(windows.current, metric),
            rule=rule,
        )
        for metric in metrics
    )
    return RegressionReport(
        current_start=current_start,
        current_end=current_end,
        baseline_start=baseline_start,
        alpha=alpha,
        min_samples=min_samples,
        min_drop=min_drop,
        comparisons=comparisons,
    )


def rolling_average(scores: pd.DataFrame, *, end: dt.datetime, days: int) -> tuple[float | None, int]:
    """Mean ``overall`` score over ``[end - days, end)`` and how many scores it averages.

    ``(None, 0)`` when the window holds no score, so "no data" is never mistaken for "score 0".
    """
    _require_aware(end=end)
    _require_columns(scores, [CREATED_AT, OVERALL])
    window = _between(scores, start=end - dt.timedelta(days=days), end=end)
    values = _values(window, OVERALL)
    if values.size == 0:
        return None, 0
    return float(values.mean()), int(values.size)


def _split_windows(
    scores: pd.DataFrame, *, baseline_start: dt.datetime, current_start: dt.datetime, current_end: dt.datetime
) -> _Windows:
    return _Windows(
        baseline=_between(scores, start=baseline_start, end=current_start),
        current=_between(scores, start=current_start, end=current_end),
    )


def _between(scores: pd.DataFrame, *, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Rows with ``start <= created_at < end``: half-open, so adjacent windows never share a row."""
    created = scores[CREATED_AT]
    return scores[(created >= start) & (created < end)]


def _values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    values = frame[metric].to_numpy(dtype=float, na_value=np.nan)
    return values[~np.isnan(values)]


def _compare_metric(metric: str, *, baseline: np.ndarray, current: np.ndarray, rule: _Rule) -> MetricComparison:
    baseline_mean = float(baseline.mean()) if baseline.size else None
    current_mean = float(current.mean()) if current.size else None
    difference = current_mean - baseline_mean if current_mean is not None and baseline_mean is not None else None
    p_value = _mann_whitney_p(baseline, current)
    return MetricComparison(
        metric=metric,
        baseline_n=int(baseline.size),
        baseline_mean=baseline_mean,
        current_n=int(current.size),
        current_mean=current_mean,
        difference=difference,
        p_value=p_value,
        status=_classify(
            baseline_n=int(baseline.size),
            current_n=int(current.size),
            difference=difference,
            p_value=p_value,
            rule=rule,
        ),
    )


def _mann_whitney_p(baseline: np.ndarray, current: np.ndarray) -> float | None:
    """Two-sided Mann-Whitney U p-value; ``None`` when a sample is empty or the test is undefined."""
    if baseline.size == 0 or current.size == 0:
        return None
    from scipy.stats import mannwhitneyu  # heavy import, kept off Airflow's plugin scan

    p = float(mannwhitneyu(current, baseline, alternative="two-sided").pvalue)
    return None if math.isnan(p) else p


def _classify(
    *, baseline_n: int, current_n: int, difference: float | None, p_value: float | None, rule: _Rule
) -> ComparisonStatus:
    if min(baseline_n, current_n) < rule.min_samples or difference is None:
        return ComparisonStatus.NOT_ENOUGH_DATA
    if p_value is None or p_value >= rule.alpha:
        return ComparisonStatus.STABLE
    if difference <= -rule.min_drop:
        return ComparisonStatus.REGRESSION
    if difference >= rule.min_drop:
        return ComparisonStatus.IMPROVEMENT
    return ComparisonStatus.STABLE


def _require_aware(**moments: dt.datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got naive {moment.isoformat()}")


def _require_columns(scores: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lack column(s) {', '.join(missing)}; have {', '.join(map(str, scores.columns))}")
    dtype = scores[CREATED_AT].dtype
    if dtype.kind == "M" and getattr(dtype, "tz", None) is None:
        # pandas would raise a bare TypeError comparing it with aware bounds; say what is wrong.
        raise ValueError(f"scores.{CREATED_AT} must be timezone-aware (UTC), got {dtype}")


__all__ = [
    "OVERALL",
    "ComparisonStatus",
    "MetricComparison",
    "RegressionReport",
    "compare_windows",
    "rolling_average",
]
