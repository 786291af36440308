"""Which regressions on-call has already heard about, so an open one is not announced every day.

A regression is identified by what dropped (metric, and segment when there is one). The first day it
appears it is *new*; while it stays open it is *ongoing* and stays quiet, unless it has dropped
further by at least ``worsen_by`` since on-call last heard (*worsening*); the first day it is gone
it is *recovered*, which gets its own message. Recovery has hysteresis: a regression that merely
stops being significant (the baseline now holds some of the bad days) but is still down by more
than ``recover_within`` stays open and quiet, so an alert does not flap. Pure functions: the
warehouse stores the state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class OpenRegression:
    """A regression on-call was told about: by how much it had dropped then, and since when."""

    key: str
    difference: float
    opened_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AlertPlan:
    new: tuple[str, ...] = ()
    worsening: tuple[str, ...] = ()
    ongoing: tuple[str, ...] = ()
    recovered: tuple[str, ...] = ()
    differences: Mapping[str, float] = field(default_factory=dict)

    @property
    def tells_on_call(self) -> bool:
        return bool(self.new or self.worsening or self.recovered)

    def open_after(self, before: Mapping[str, OpenRegression], now: dt.datetime) -> dict[str, OpenRegression]:
        """The open regressions to store once on-call has been told: announced ones at today's drop."""
        after = {k: v for k, v in before.items() if k not in self.recovered}
        for key in (*self.new, *self.worsening):
            opened = before[key].opened_at if key in before else now
            after[key] = OpenRegression(key, self.differences[key], opened)
        return after


def plan_alerts(
    open_before: Mapping[str, OpenRegression],
    regressed: Mapping[str, float],
    *,
    worsen_by: float,
    differences: Mapping[str, float] | None = None,
    recover_within: float = 0.0,
) -> AlertPlan:
    """Sort today's regressions (key → difference, negative) against what on-call already knows.

    ``differences`` holds today's difference for every comparison, significant or not; an open
    regression recovers only when its difference is back above ``-recover_within``."""
    today = {**(differences or {}), **regressed}
    new = tuple(sorted(k for k in regressed if k not in open_before))
    worsening = tuple(
        sorted(k for k in regressed if k in open_before and regressed[k] <= open_before[k].difference - worsen_by)
    )
    recovered = tuple(
        sorted(k for k in open_before if k not in regressed and (k not in today or today[k] > -recover_within))
    )
    ongoing = tuple(sorted(k for k in open_before if k not in worsening and k not in recovered))
    return AlertPlan(new, worsening, ongoing, recovered, dict(regressed))


def regression_key(metric: str, segment: str | None = None) -> str:
    return f"{metric} in {segment}" if segment else metric
