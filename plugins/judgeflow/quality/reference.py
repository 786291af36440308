"""The levels an alert is measured against: a window's mean with its interval, and a clean baseline.

Two jobs, both pure:

- :func:`window_levels` gives every key the comparison knows (``overall``, each criterion, each of
  them in each segment) its mean, 95% interval and n over one window: today's level, or the
  reference a regression is frozen at when it is first found.
- :func:`clean_baseline` leaves out of the baseline the days a regression was open (they are not
  what normal looks like) and the days before an accepted level shift (accepting re-baselines), and
  reaches further back so the baseline still holds ``baseline_days`` clean days.

The interval is the normal approximation, mean ± 1.96·sd/√n: the lifecycle asks "is today's
level still clearly below the reference", and the bootstrap of :mod:`judgeflow.quality.stats` is
spent on the comparison's difference already.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from judgeflow.quality.alert_state import Level, Reference, regression_key
from judgeflow.quality.stats import CREATED_AT, OVERALL, between, metric_values

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DAY = dt.timedelta(days=1)
Z95 = 1.959964


def level_of(values: np.ndarray) -> Level | None:
    """Mean and normal 95% interval of ``values``; ``None`` when empty. One value: a zero-width interval."""
    n = int(values.size)
    if n == 0:
        return None
    mean = float(values.mean())
    half = Z95 * float(values.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
    return Level(mean=mean, low=mean - half, high=mean + half, n=n)


def window_levels(
    scores: pd.DataFrame,
    *,
    criteria: Sequence[str],
    start: dt.datetime,
    end: dt.datetime,
    segment_columns: Sequence[str] = (),
) -> dict[str, Level]:
    """The level of every key in ``[start, end)``, keyed as :func:`~judgeflow.quality.alert_state.regression_key`."""
    window = between(scores, start=start, end=end)
    metrics = [OVERALL, *(c for c in criteria if c != OVERALL)]
    found: dict[str, Level] = {}
    for segment, part in _groups(window, segment_columns):
        for metric in metrics:
            level = level_of(metric_values(part, metric))
            if level is not None:
                found[regression_key(metric, segment)] = level
    return found


def references_for(
    scores: pd.DataFrame,
    keys: Sequence[str],
    *,
    criteria: Sequence[str],
    baseline_start: dt.datetime,
    current_start: dt.datetime,
    segment_columns: Sequence[str] = (),
) -> dict[str, Reference]:
    """The baseline level of each of ``keys`` (today's regressions): what a new one is frozen at."""
    levels = window_levels(
        scores, criteria=criteria, start=baseline_start, end=current_start, segment_columns=segment_columns
    )
    return {k: Reference(levels[k], baseline_start, current_start) for k in keys if k in levels}


class CleanBaseline(NamedTuple):
    """The scores without the left-out days, and how many days back the baseline then reaches."""

    scores: pd.DataFrame
    baseline_days: int
    left_out: tuple[tuple[dt.datetime, dt.datetime], ...]


def baseline_reach(
    current_start: dt.datetime,
    *,
    baseline_days: int,
    excluded: Sequence[tuple[dt.datetime, dt.datetime]],
    floor: dt.datetime | None = None,
    max_days: int = 90,
) -> tuple[int, tuple[tuple[dt.datetime, dt.datetime], ...]]:
    """How many days before ``current_start`` hold ``baseline_days`` days outside ``excluded``, and
    the excluded days met on the way. Never reaches before ``floor`` (the start of an accepted shift)
    nor more than ``max_days`` back: a baseline short of clean days is short, and says so in its n."""
    clean, reach, met = 0, 0, []
    day = current_start
    while clean < baseline_days and reach < max_days:
        day, reach = day - DAY, reach + 1
        if floor is not None and day < floor:
            reach -= 1
            break
        if any(start < day + DAY and day < end for start, end in excluded):
            met.append((day, day + DAY))
        else:
            clean += 1
    return max(reach, 1), tuple(met)


def left_out_days(
    current_start: dt.datetime, excluded: Sequence[tuple[dt.datetime, dt.datetime]], *, days: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The whole days among the ``days`` before ``current_start`` that touch an ``excluded`` interval,
    as :func:`baseline_reach` counts them (a day partly excluded is left out whole)."""
    before = (current_start - k * DAY for k in range(1, days + 1))
    return [(day, day + DAY) for day in before if any(start < day + DAY and day < end for start, end in excluded)]


def clean_baseline(
    scores: pd.DataFrame,
    *,
    current_start: dt.datetime,
    baseline_days: int,
    excluded: Sequence[tuple[dt.datetime, dt.datetime]],
    floor: dt.datetime | None = None,
) -> CleanBaseline:
    """``scores`` without the excluded days before ``current_start`` (today itself is always kept)."""
    reach, met = baseline_reach(current_start, baseline_days=baseline_days, excluded=excluded, floor=floor)
    if not met and floor is None:
        return CleanBaseline(scores, reach, met)
    created = scores[CREATED_AT]
    keep = created >= current_start
    lowest = current_start - reach * DAY
    clean = (created >= lowest) & (created < current_start)
    for start, end in met:
        clean &= ~((created >= start) & (created < end))
    return CleanBaseline(scores[keep | clean], reach, met)


def _groups(window: pd.DataFrame, segment_columns: Sequence[str]) -> Iterator[tuple[str | None, pd.DataFrame]]:
    yield None, window
    for column in segment_columns:
        for value in sorted(window[column].dropna().unique(), key=str):
            yield f"{column}={value}", window[window[column] == value]
