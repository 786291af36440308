"""The statistics behind :mod:`judgeflow.quality.regression`: pure numpy/scipy helpers, no frames, no I/O.

- :func:`bootstrap_mean_difference_ci`: percentile bootstrap CI of ``mean(current) - mean(baseline)``;
- :func:`mann_whitney`: two-sided Mann-Whitney U p-value and Cliff's delta from the same U;
- :func:`benjamini_hochberg`: q-values across every test of a report (scipy's ``false_discovery_control``);
- :func:`minimum_detectable_effect`: the smallest drop a comparison of these sizes would find;
- :func:`root_causes`: which segment values pull the current window's average down;
- the window and column helpers both :mod:`judgeflow.quality.regression` and :func:`root_causes` use.

scipy is imported inside the functions: the DAG processor imports the task modules when it parses
the DAG file, and scipy is too heavy to load there.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

OVERALL = "overall"
"""The metric name of the weighted overall score; always compared first."""

CREATED_AT = "created_at"
RESPONSE_ID = "response_id"

_MAX_BOOT_CELLS = 4_000_000
"""Upper bound on the elements of one resampling block, so a big window cannot exhaust memory."""


class MannWhitney(NamedTuple):
    """A two-sided Mann-Whitney U test of ``current`` against ``baseline``.

    ``cliffs_delta`` = P(current > baseline) - P(current < baseline) over all pairs, in [-1, 1]:
    negative means current scores tend to be lower. Both are ``None`` when the test is undefined.
    """

    p_value: float | None
    cliffs_delta: float | None


def mann_whitney(baseline: np.ndarray, current: np.ndarray) -> MannWhitney:
    """Two-sided Mann-Whitney U (ties averaged) and Cliff's delta = 2U / (n1 n2) - 1."""
    if baseline.size == 0 or current.size == 0:
        return MannWhitney(None, None)
    from scipy.stats import mannwhitneyu  # heavy import, kept off Airflow's plugin scan

    result = mannwhitneyu(current, baseline, alternative="two-sided")
    u, p = float(result.statistic), float(result.pvalue)
    delta = 2.0 * u / (current.size * baseline.size) - 1.0
    return MannWhitney(None if math.isnan(p) else p, None if math.isnan(delta) else delta)


def bootstrap_mean_difference_ci(
    baseline: np.ndarray,
    current: np.ndarray,
    *,
    rng: np.random.Generator,
    n_boot: int,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of ``mean(current) - mean(baseline)``; ``None`` if a sample is empty.

    Each window is resampled with replacement on its own. Resampling n values from a sample is the
    same as drawing multinomial counts over its distinct values, so judge scores (a handful of
    distinct values) cost ``n_boot x distinct`` instead of ``n_boot x n``: exact, and fast.
    """
    if baseline.size == 0 or current.size == 0:
        return None
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    diffs = _boot_means(current, rng=rng, n_boot=n_boot) - _boot_means(baseline, rng=rng, n_boot=n_boot)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return float(low), float(high)


def _boot_means(sample: np.ndarray, *, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    values, counts = np.unique(sample, return_counts=True)
    pvals = counts / sample.size
    block = max(1, _MAX_BOOT_CELLS // values.size)
    means = [
        rng.multinomial(sample.size, pvals, size=min(block, n_boot - start)) @ values / sample.size
        for start in range(0, n_boot, block)
    ]
    return np.concatenate(means)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values (step-up, monotone, capped at 1), in the input's order, by
    ``scipy.stats.false_discovery_control``.

    A comparison with ``q < alpha`` is a discovery at false discovery rate ``alpha``. When nothing
    changed at all this bounds the chance of *any* discovery by ``alpha`` as well (for independent or
    positively dependent tests, which overlapping metrics and segments are).
    """
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return p.copy()
    from scipy.stats import false_discovery_control  # heavy import, kept off DAG parsing

    return np.asarray(false_discovery_control(p, method="bh"), dtype=float)


def minimum_detectable_effect(baseline: np.ndarray, current: np.ndarray, *, alpha: float, power: float) -> float | None:
    """The smallest difference in means a two-sided test at ``alpha`` finds with probability ``power``.

    ``(z(1 - alpha/2) + z(power)) * sd * sqrt(1/n_baseline + 1/n_current)``, the normal approximation
    of the two-sample test, with ``sd`` the *baseline* window's sample SD: the spread the metric has
    when nothing is wrong, so a drop in the current window does not change what could be detected.
    The Mann-Whitney test the comparison runs has about the same power on judge scores (its
    efficiency against the t-test is 0.95 for normal data and higher for skewed). ``alpha`` is taken
    before the Benjamini-Hochberg adjustment, so with many comparisons this is a floor. ``None`` when a
    window has fewer than two values.
    """
    if baseline.size < 2 or current.size < 2:
        return None
    from statistics import NormalDist  # the standard library's: no scipy needed for two quantiles

    z = NormalDist().inv_cdf(1.0 - alpha / 2.0) + NormalDist().inv_cdf(power)
    sd = float(np.std(baseline, ddof=1))
    return z * sd * math.sqrt(1.0 / baseline.size + 1.0 / current.size)


class WorstResponse(NamedTuple):
    response_id: str
    score: float


@dataclass(frozen=True, slots=True)
class SegmentPull:
    """How much one segment value pulls the current window's average of ``metric`` away from the rest.

    ``pull = (mean - overall_mean) * share``, on the rubric's scale; the pulls of one column's values
    add up to zero. ``worst`` holds the ids of its lowest-scoring responses, lowest first.
    """

    segment: str
    column: str
    value: str
    metric: str
    n: int
    mean: float
    share: float
    pull: float
    worst: tuple[WorstResponse, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "column": self.column,
            "value": self.value,
            "metric": self.metric,
            "n": self.n,
            "mean": self.mean,
            "share": self.share,
            "pull": self.pull,
            "worst": [{"response_id": w.response_id, "score": w.score} for w in self.worst],
        }


def root_causes(
    report_scores: pd.DataFrame,
    *,
    current_start: dt.datetime,
    current_end: dt.datetime,
    segment_columns: Sequence[str],
    metric: str = OVERALL,
    worst_n: int = 3,
) -> list[SegmentPull]:
    """Each segment value's pull on the current window's mean ``metric``, most negative first.

    Only responses with a ``metric`` value count; ties in pull break on the segment name, ties in
    score on the response id, so the order is stable. An empty window gives ``[]``.
    """
    require_aware(current_start=current_start, current_end=current_end)
    require_columns(report_scores, [CREATED_AT, RESPONSE_ID, metric, *segment_columns])
    current = between(report_scores, start=current_start, end=current_end)
    current = current[current[metric].notna()]
    if current.empty:
        return []
    overall_mean, total = float(current[metric].mean()), len(current)
    pulls: list[SegmentPull] = []
    for column in segment_columns:
        for value, group in current.groupby(column, dropna=True, sort=True):
            mean, share = float(group[metric].mean()), len(group) / total
            worst = group.assign(_id=group[RESPONSE_ID].astype(str)).sort_values([metric, "_id"]).head(worst_n)
            pulls.append(
                SegmentPull(
                    segment=f"{column}={value}",
                    column=column,
                    value=str(value),
                    metric=metric,
                    n=len(group),
                    mean=mean,
                    share=share,
                    pull=(mean - overall_mean) * share,
                    worst=tuple(WorstResponse(i, float(s)) for i, s in zip(worst["_id"], worst[metric], strict=True)),
                )
            )
    return sorted(pulls, key=lambda p: (p.pull, p.segment))


def between(scores: pd.DataFrame, *, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Rows with ``start <= created_at < end``: half-open, so adjacent windows never share a row."""
    created = scores[CREATED_AT]
    return scores[(created >= start) & (created < end)]


def metric_values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    values = frame[metric].to_numpy(dtype=float, na_value=np.nan)
    return values[~np.isnan(values)]


def require_aware(**moments: dt.datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got naive {moment.isoformat()}")


def require_columns(scores: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise ValueError(f"scores lack column(s) {', '.join(missing)}; have {', '.join(map(str, scores.columns))}")
    dtype = scores[CREATED_AT].dtype
    if dtype.kind == "M" and getattr(dtype, "tz", None) is None:
        # pandas would raise a bare TypeError comparing it with aware bounds; say what is wrong.
        raise ValueError(f"scores.{CREATED_AT} must be timezone-aware (UTC), got {dtype}")


__all__ = [
    "MannWhitney",
    "SegmentPull",
    "WorstResponse",
    "benjamini_hochberg",
    "between",
    "bootstrap_mean_difference_ci",
    "mann_whitney",
    "metric_values",
    "minimum_detectable_effect",
    "require_aware",
    "require_columns",
    "root_causes",
]
