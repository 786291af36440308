"""Which rubric version a view shows, and up to which day: what every read of :mod:`judgeflow.ui` is scoped by."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

DAY = dt.timedelta(days=1)


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
    """SQLite gives timestamps back without their zone; they were written in UTC."""
    if isinstance(moment, dt.datetime) and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment
