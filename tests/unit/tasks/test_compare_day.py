"""The day's comparison when earlier days are left out of baselines (a regression's days)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from judgeflow.config import AlertConfig
from judgeflow.quality.regression import ComparisonStatus
from judgeflow.tasks.alerting import compare_day

DAY = dt.timedelta(days=1)
TODAY = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
TOPICS = ("account", "billing", "product", "returns", "shipping")


def _scores(*, bad_days: int) -> pd.DataFrame:
    """Fourteen days up to TODAY, ten answers a topic a day; shipping 2.5 lower on its last ``bad_days``."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    for back in range(13, -1, -1):
        for topic in TOPICS:
            shift = -2.5 if topic == "shipping" and back < bad_days else 0.0
            for _ in range(10):
                score = float(np.clip(np.rint(rng.normal(3.8 + shift, 0.7)), 1, 5))
                created = TODAY - back * DAY + dt.timedelta(seconds=int(rng.integers(0, 86_400)))
                rows.append({"created_at": created, "topic": topic, "overall": score, "accuracy": score})
    return pd.DataFrame(rows)


def test_a_pooled_segment_keeps_its_recent_days_that_baselines_leave_out() -> None:
    """Shipping has been down three days; the two before today are a pending regression's days, left out
    of baselines. Its pooled window still takes exactly those three days (30 answers), all bad, against
    the clean days before them: it must not reach back past them into clean days, which would dilute
    the drop it measures (it pooled five days, two of them clean, before this was mended)."""
    excluded = [(TODAY - 2 * DAY, TODAY)]
    day = compare_day(
        _scores(bad_days=3),
        alerts=AlertConfig(),
        criteria=["accuracy"],
        segments=["topic"],
        current_start=TODAY,
        current_end=TODAY + DAY,
        excluded=excluded,
        n_boot=50,
    )

    shipping = day.report.get("overall", segment="topic=shipping")
    assert shipping is not None
    assert (shipping.days_pooled, shipping.current_n) == (3, 30)
    assert shipping.status is ComparisonStatus.REGRESSION
    assert shipping.difference is not None and shipping.difference < -2.0, "every pooled day is a bad one"
    # its baseline: as many days before the pooled window as all responses reach back (nine, the two
    # left-out days counted), none of them left out now that the window took them
    assert shipping.baseline_n == 9 * 10
    everyone = day.report.get("overall")
    assert everyone is not None and everyone.days_pooled == 1
    # all responses: today against seven clean days, the two left-out days skipped (nine days back)
    assert everyone.baseline_n == 7 * 50 and day.baseline.baseline_days == 9
