"""Levels with their intervals, and baselines without the days of a regression."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from judgeflow.quality.reference import baseline_reach, clean_baseline, level_of, window_levels

DAY = dt.timedelta(days=1)
TODAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def test_a_level_is_the_mean_with_its_normal_interval() -> None:
    level = level_of(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert level is not None
    assert (level.mean, level.n) == (3.0, 5)
    assert level.high - level.mean == pytest.approx(1.959964 * np.std([1, 2, 3, 4, 5], ddof=1) / np.sqrt(5))
    assert level_of(np.array([])) is None


@pytest.mark.parametrize(
    ("excluded", "floor", "reach", "left_out"),
    [
        pytest.param([], None, 7, 0, id="nothing-to-leave-out"),
        pytest.param([(TODAY - 3 * DAY, TODAY - DAY)], None, 9, 2, id="two-days-of-a-recovered-regression"),
        pytest.param([(TODAY - 2 * DAY, dt.datetime(9999, 1, 1, tzinfo=dt.UTC))], None, 9, 2, id="open-since-two-days"),
        pytest.param([], TODAY - 3 * DAY, 3, 0, id="an-accepted-shift-three-days-ago"),
    ],
)
def test_the_baseline_reaches_back_for_its_clean_days(
    excluded: list[tuple[dt.datetime, dt.datetime]], floor: dt.datetime | None, reach: int, left_out: int
) -> None:
    days, met = baseline_reach(TODAY, baseline_days=7, excluded=excluded, floor=floor)
    assert (days, len(met)) == (reach, left_out)


def test_clean_baseline_drops_the_left_out_days_but_keeps_today() -> None:
    stamps = [TODAY - d * DAY + dt.timedelta(hours=1) for d in range(10, -1, -1)]
    frame = pd.DataFrame({"created_at": stamps, "overall": [3.0] * 10 + [1.0]})
    clean = clean_baseline(frame, current_start=TODAY, baseline_days=7, excluded=[(TODAY - 2 * DAY, TODAY)])
    days = sorted({(TODAY - s.floor("D")).days for s in clean.scores["created_at"] if s < TODAY})
    assert clean.baseline_days == 9 and days == list(range(3, 10)), "7 clean days, 2 left out"
    assert (clean.scores["created_at"] >= TODAY).sum() == 1


def test_window_levels_key_segments_as_the_alert_state_does() -> None:
    frame = pd.DataFrame(
        {
            "created_at": [TODAY + dt.timedelta(hours=h) for h in range(4)],
            "overall": [1.0, 2.0, 3.0, 4.0],
            "accuracy": [1.0, 1.0, 5.0, 5.0],
            "topic": ["a", "a", "b", "b"],
        }
    )
    levels = window_levels(frame, criteria=["accuracy"], start=TODAY, end=TODAY + DAY, segment_columns=["topic"])
    assert levels["overall"].mean == 2.5 and levels["accuracy in topic=b"].mean == 5.0
    assert set(levels) == {"overall", "accuracy", *(f"{m} in topic={t}" for m in ("overall", "accuracy") for t in "ab")}
