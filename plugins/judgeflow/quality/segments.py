"""The windows each comparison of :mod:`judgeflow.quality.regression` reads, a small segment's pooled.

All responses are compared day against baseline. A segment of ten responses a day never reaches
``alerts.min_samples`` (30 by default) in one day, so it would say ``not_enough_data`` for ever. Its
current window is therefore *pooled*: widened backwards a whole day at a time, up to
``max_pool_days`` days in all, until it holds ``min_samples`` scores; its baseline is the
``baseline_days`` days just before the pooled window, so the two never overlap. The row says how many
days it pooled (``days_pooled``), so a reader knows that a segment's "current" may be its last three
days rather than today.

Days *left out* (a regression's days, :func:`judgeflow.quality.reference.clean_baseline`) are left out
of baselines only. A pooled current window keeps them: they are the segment's recent days, and without
them the window would reach back past them into older clean days and dilute the drop it measures.

Pooling trades speed of detection for the power to detect at all: a drop in a small segment shows
with part of its strength on the first day and all of it once the pooled days are all bad.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from judgeflow.quality.stats import CREATED_AT, OVERALL, between, metric_values

if TYPE_CHECKING:
    import pandas as pd

DAY = dt.timedelta(days=1)


class Windows(NamedTuple):
    baseline: pd.DataFrame
    current: pd.DataFrame


class Group(NamedTuple):
    """All responses (``segment`` ``None``) or one segment value, with the windows it is compared on."""

    segment: str | None
    windows: Windows
    days_pooled: int = 1


class Span(NamedTuple):
    """Where the comparison looks: the current window and the length of the baseline before it."""

    current_start: dt.datetime
    current_end: dt.datetime
    baseline_days: int


def split_windows(
    scores: pd.DataFrame, span: Span, *, pooled_days: int = 1, left_out: Sequence[tuple[dt.datetime, dt.datetime]] = ()
) -> Windows:
    """The current window (widened back by ``pooled_days - 1`` days) and the baseline days before it,
    without the ``left_out`` intervals (which only baselines leave out)."""
    start = span.current_start - (pooled_days - 1) * DAY
    baseline = between(scores, start=start - span.baseline_days * DAY, end=start)
    created, out = baseline[CREATED_AT], None
    for out_start, out_end in left_out:
        inside = (created >= out_start) & (created < out_end)
        out = inside if out is None else out | inside
    if out is not None:
        baseline = baseline[~out]
    return Windows(baseline=baseline, current=between(scores, start=start, end=span.current_end))


def groups(
    scores: pd.DataFrame,
    span: Span,
    *,
    segment_columns: Sequence[str],
    min_samples: int,
    max_pool_days: int,
    left_out: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> Iterator[Group]:
    """All responses, then each value (present in either unpooled window) of each segment column, sorted."""
    windows = split_windows(scores, span, left_out=left_out)
    yield Group(None, windows)
    for column in segment_columns:
        present = {*windows.baseline[column].dropna(), *windows.current[column].dropna()}
        for value in sorted(present, key=str):
            rows = scores[scores[column] == value]
            days = pooled_days(rows, span, min_samples=min_samples, max_pool_days=max_pool_days)
            yield Group(f"{column}={value}", split_windows(rows, span, pooled_days=days, left_out=left_out), days)


def pooled_days(rows: pd.DataFrame, span: Span, *, min_samples: int, max_pool_days: int) -> int:
    """The fewest days (1 to ``max_pool_days``) whose current window holds ``min_samples`` overall scores.

    ``max_pool_days`` when even that many days hold fewer: the row then says how far it looked.
    """
    for days in range(1, max_pool_days):
        current = between(rows, start=span.current_start - (days - 1) * DAY, end=span.current_end)
        if metric_values(current, OVERALL).size >= min_samples:
            return days
    return max_pool_days


__all__ = ["DAY", "Group", "Span", "Windows", "groups", "pooled_days", "split_windows"]
