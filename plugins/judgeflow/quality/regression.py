"""Did quality drop? Compare today's scores with the days before, metric by metric and segment by segment.

Pure functions over a DataFrame of scores (one row per judged response: ``response_id``,
``created_at`` as tz-aware UTC, ``overall``, one float column per rubric criterion, optional
segment columns). No I/O and no clock: every time comes in as an argument, and the bootstrap is
seeded, so a rerun of an old interval gives the same report.

The comparison runs in steps:

- :func:`judgeflow.quality.segments.groups` cuts the frame into the baseline and current windows of
  all responses plus one group per segment value (``topic=shipping``), a small segment's current window
  pooled over its last days until it holds ``min_samples`` scores;
- :func:`_compare_metric` turns two samples into one :class:`MetricComparison`: difference in
  means with a bootstrap CI, Mann-Whitney p-value and Cliff's delta (the numbers live in
  :mod:`judgeflow.quality.stats`);
- :func:`_adjust` turns every p-value of the report into a Benjamini-Hochberg q-value and
  :func:`_classify` maps numbers to a :class:`ComparisonStatus` given a :class:`_Rule`; each tested row
  also states its minimum detectable effect at ``alpha`` and ``power``;
- :func:`judgeflow.quality.root_cause.locate_drop` says whether a drop is global or local;
- :func:`root_causes` says which segments pull the current average down, with their worst responses.

A regression is a value in the report, not an exception: whether it fails a run is the caller's call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from judgeflow.quality.redaction import redact
from judgeflow.quality.root_cause import RootCause, locate_drop
from judgeflow.quality.segments import Span, groups
from judgeflow.quality.stats import (
    CREATED_AT,
    OVERALL,
    SegmentPull,
    WorstResponse,
    benjamini_hochberg,
    between,
    bootstrap_mean_difference_ci,
    mann_whitney,
    metric_values,
    minimum_detectable_effect,
    require_aware,
    require_columns,
    root_causes,
)

if TYPE_CHECKING:
    import pandas as pd


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


class _Test(NamedTuple):
    """How a comparison is tested: resampling, and what the minimum detectable effect assumes."""

    rng: np.random.Generator
    n_boot: int
    alpha: float
    power: float


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric, baseline window vs current window, over all responses or one segment.

    ``difference`` is ``current_mean - baseline_mean`` on the rubric's scale: negative means worse;
    ``ci_low``/``ci_high`` its bootstrap 95% interval. ``effect_size`` is Cliff's delta in [-1, 1]
    (negative: current scores tend to be lower). ``q_value`` is the p-value after Benjamini-Hochberg
    over every test in the report; the status uses it. Means and difference are ``None`` when a
    window has no values; p, q, CI and effect size also when a window has fewer than ``min_samples``
    values (no test is run) or the test is undefined. ``segment`` is ``None`` for all responses,
    else ``"column=value"``. ``days_pooled`` is how many days the current window spans (a small
    segment's pooled days; 1 for all responses), its baseline the days before those. ``mde`` is the
    smallest drop this row could detect (:func:`judgeflow.quality.stats.minimum_detectable_effect`),
    ``None`` when it was not tested.
    """

    metric: str
    baseline_n: int
    baseline_mean: float | None
    current_n: int
    current_mean: float | None
    difference: float | None
    p_value: float | None
    status: ComparisonStatus
    ci_low: float | None = None
    ci_high: float | None = None
    effect_size: float | None = None
    q_value: float | None = None
    segment: str | None = None
    days_pooled: int = 1
    mde: float | None = None

    @property
    def label(self) -> str:
        """``accuracy`` or ``accuracy [topic=shipping]``: what to call this row in a message."""
        return self.metric if self.segment is None else f"{self.metric} [{self.segment}]"

    @property
    def shown_label(self) -> str:
        """:attr:`label` with the segment value redacted: what leaves for Slack, the report and the view.

        A segment value comes from the application's data (what users typed, perhaps); the metric is a
        rubric's criterion name, which judgeflow's own config chose and is never masked."""
        return self.metric if self.segment is None else f"{self.metric} [{redact(self.segment)}]"

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
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "effect_size": self.effect_size,
            "q_value": self.q_value,
            "segment": self.segment,
            "days_pooled": self.days_pooled,
            "mde": self.mde,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricComparison:
        """Read :meth:`to_json` output; JSON written before a field existed gets its default, and keys
        stored beside the row (``sample_rate``, ``root_cause``) are left to whoever wrote them."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "status": ComparisonStatus(data["status"])})


@dataclass(frozen=True, slots=True)
class RegressionReport:
    """Every comparison for one interval, with the windows and thresholds that produced it.

    ``comparisons`` holds the all-responses rows (``overall`` first, then each criterion), then each
    segment's rows in the same order. Small enough for XCom: numbers, names and ISO timestamps,
    never response texts.
    """

    current_start: dt.datetime
    current_end: dt.datetime
    baseline_start: dt.datetime
    alpha: float
    min_samples: int
    min_drop: float
    comparisons: tuple[MetricComparison, ...]
    segment_columns: tuple[str, ...] = ()
    n_boot: int = 2000
    seed: int = 0
    max_pool_days: int = 1
    power: float = 0.8
    root_cause: RootCause | None = None

    @property
    def regressions(self) -> tuple[MetricComparison, ...]:
        """Every regression row, all-responses and segment alike."""
        return tuple(c for c in self.comparisons if c.status.is_regression)

    @property
    def segment_regressions(self) -> tuple[MetricComparison, ...]:
        """The regression rows of single segments."""
        return tuple(c for c in self.regressions if c.segment is not None)

    @property
    def has_regression(self) -> bool:
        return any(c.status.is_regression for c in self.comparisons)

    def get(self, metric: str, *, segment: str | None = None) -> MetricComparison | None:
        """The comparison of ``metric`` (over all responses, or ``segment``), ``None`` if not compared."""
        return next((c for c in self.comparisons if c.metric == metric and c.segment == segment), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "current_start": self.current_start.isoformat(),
            "current_end": self.current_end.isoformat(),
            "baseline_start": self.baseline_start.isoformat(),
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "min_drop": self.min_drop,
            "comparisons": [c.to_json() for c in self.comparisons],
            "segment_columns": list(self.segment_columns),
            "n_boot": self.n_boot,
            "seed": self.seed,
            "max_pool_days": self.max_pool_days,
            "power": self.power,
            "root_cause": None if self.root_cause is None else self.root_cause.to_json(),
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
            segment_columns=tuple(data.get("segment_columns", ())),
            n_boot=int(data.get("n_boot", 2000)),
            seed=int(data.get("seed", 0)),
            max_pool_days=int(data.get("max_pool_days", 1)),
            power=float(data.get("power", 0.8)),
            root_cause=RootCause.from_json(data["root_cause"]) if data.get("root_cause") else None,
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
    segment_columns: Sequence[str] = (),
    n_boot: int = 2000,
    seed: int = 0,
    max_pool_days: int = 1,
    power: float = 0.8,
    left_out: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> RegressionReport:
    """Compare ``[current_start, current_end)`` with the ``baseline_days`` days just before it.

    ``overall`` and each criterion are compared over all responses, then within each value of each
    of ``segment_columns`` (values present in either window; missing values belong to no segment).
    Each comparison gets the difference in means with a bootstrap 95% CI (``n_boot`` resamples from
    ``numpy.random.default_rng(seed)``), a two-sided Mann-Whitney U test (scores are small ordinal
    integers, far from normal) and Cliff's delta. The p-values of all comparisons are adjusted
    together (Benjamini-Hochberg), so more segments do not mean more false alerts. A change counts
    only when it is at least ``min_drop`` on the rubric's scale and ``q < alpha``; a window with
    fewer than ``min_samples`` values says ``not_enough_data`` rather than guess. Missing (NaN)
    values of a metric are left out of that metric only.

    A segment whose current window holds fewer than ``min_samples`` scores is pooled over its last
    days, up to ``max_pool_days`` (:mod:`judgeflow.quality.segments`); every tested row states its
    minimum detectable effect at ``alpha`` and ``power``; the report's ``root_cause`` says whether a
    drop is global or local (:mod:`judgeflow.quality.root_cause`). The ``left_out`` intervals (a
    regression's days) are left out of every baseline window, not of a pooled current window.

    Raises ``ValueError`` for naive datetimes, ``current_end <= current_start`` or missing columns.
    """
    require_aware(current_start=current_start, current_end=current_end)
    if current_end <= current_start:
        raise ValueError(f"current_end {current_end} must be after current_start {current_start}")
    if baseline_days < 1:
        raise ValueError(f"baseline_days must be at least 1, got {baseline_days}")
    if max_pool_days < 1:
        raise ValueError(f"max_pool_days must be at least 1, got {max_pool_days}")
    metrics = [OVERALL, *(c for c in criteria if c != OVERALL)]
    require_columns(scores, [CREATED_AT, *metrics, *segment_columns])

    baseline_start = current_start - dt.timedelta(days=baseline_days)
    span = Span(current_start, current_end, baseline_days)
    rule = _Rule(alpha=alpha, min_samples=min_samples, min_drop=min_drop)
    test = _Test(np.random.default_rng(seed), n_boot, alpha, power)
    tested = [
        _compare_metric(
            metric,
            baseline=metric_values(group.windows.baseline, metric),
            current=metric_values(group.windows.current, metric),
            segment=group.segment,
            days_pooled=group.days_pooled,
            min_samples=min_samples,
            test=test,
        )
        for group in groups(
            scores,
            span,
            segment_columns=segment_columns,
            min_samples=min_samples,
            max_pool_days=max_pool_days,
            left_out=left_out,
        )
        for metric in metrics
    ]
    comparisons = _adjust(tested, rule=rule)
    return RegressionReport(
        current_start=current_start,
        current_end=current_end,
        baseline_start=baseline_start,
        alpha=alpha,
        min_samples=min_samples,
        min_drop=min_drop,
        comparisons=comparisons,
        segment_columns=tuple(segment_columns),
        n_boot=n_boot,
        seed=seed,
        max_pool_days=max_pool_days,
        power=power,
        root_cause=locate_drop(comparisons, segment_columns=segment_columns, min_drop=min_drop),
    )


def rolling_average(scores: pd.DataFrame, *, end: dt.datetime, days: int) -> tuple[float | None, int]:
    """Mean ``overall`` score over ``[end - days, end)`` and how many scores it averages.

    ``(None, 0)`` when the window holds no score, so "no data" is never mistaken for "score 0".
    """
    require_aware(end=end)
    require_columns(scores, [CREATED_AT, OVERALL])
    window = between(scores, start=end - dt.timedelta(days=days), end=end)
    values = metric_values(window, OVERALL)
    if values.size == 0:
        return None, 0
    return float(values.mean()), int(values.size)


def _compare_metric(
    metric: str,
    *,
    baseline: np.ndarray,
    current: np.ndarray,
    segment: str | None,
    days_pooled: int,
    min_samples: int,
    test: _Test,
) -> MetricComparison:
    """Means always; CI, p-value and effect size only when both windows hold ``min_samples`` values.

    The status is provisional (``not_enough_data``) until :func:`_adjust` has seen every p-value.
    """
    baseline_mean = float(baseline.mean()) if baseline.size else None
    current_mean = float(current.mean()) if current.size else None
    difference = current_mean - baseline_mean if current_mean is not None and baseline_mean is not None else None
    row = MetricComparison(
        metric=metric,
        baseline_n=int(baseline.size),
        baseline_mean=baseline_mean,
        current_n=int(current.size),
        current_mean=current_mean,
        difference=difference,
        p_value=None,
        status=ComparisonStatus.NOT_ENOUGH_DATA,
        segment=segment,
        days_pooled=days_pooled,
    )
    if min(baseline.size, current.size) < max(min_samples, 1):
        return row
    mw = mann_whitney(baseline, current)
    ci = bootstrap_mean_difference_ci(baseline, current, rng=test.rng, n_boot=test.n_boot)
    return dataclasses.replace(
        row,
        p_value=mw.p_value,
        effect_size=mw.cliffs_delta,
        mde=minimum_detectable_effect(baseline, current, alpha=test.alpha, power=test.power),
        ci_low=None if ci is None else ci[0],
        ci_high=None if ci is None else ci[1],
    )


def _adjust(rows: Sequence[MetricComparison], *, rule: _Rule) -> tuple[MetricComparison, ...]:
    """Benjamini-Hochberg over every row with a p-value, then the final status from the q-value."""
    tested = [i for i, row in enumerate(rows) if row.p_value is not None]
    q_values = benjamini_hochberg(np.array([rows[i].p_value for i in tested], dtype=float))
    q_by_index = {i: float(q) for i, q in zip(tested, q_values, strict=True)}
    return tuple(
        dataclasses.replace(
            row,
            q_value=q_by_index.get(i),
            status=_classify(
                baseline_n=row.baseline_n,
                current_n=row.current_n,
                difference=row.difference,
                q_value=q_by_index.get(i),
                rule=rule,
            ),
        )
        for i, row in enumerate(rows)
    )


def _classify(
    *, baseline_n: int, current_n: int, difference: float | None, q_value: float | None, rule: _Rule
) -> ComparisonStatus:
    if min(baseline_n, current_n) < rule.min_samples or difference is None:
        return ComparisonStatus.NOT_ENOUGH_DATA
    if q_value is None or q_value >= rule.alpha:
        return ComparisonStatus.STABLE
    if difference <= -rule.min_drop:
        return ComparisonStatus.REGRESSION
    if difference >= rule.min_drop:
        return ComparisonStatus.IMPROVEMENT
    return ComparisonStatus.STABLE


__all__ = [
    "OVERALL",
    "ComparisonStatus",
    "MetricComparison",
    "RegressionReport",
    "RootCause",
    "SegmentPull",
    "WorstResponse",
    "compare_windows",
    "rolling_average",
    "root_causes",
]
