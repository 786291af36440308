"""Which regressions on-call already knows about, measured against the level they dropped from.

A regression is identified by what dropped (metric, and segment when there is one). Its life:

- **pending**: found down today, but ``open_after_days`` days running are needed before on-call
  hears (one day's noise is not a page); a pending key not found down the next day is forgotten.
- **new**: confirmed; on-call is told once. Its *reference* is frozen now: the baseline it was
  first found against (mean, 95% interval, n, and the window of days), because a rolling baseline
  would soon hold the bad days themselves and the drop would fade from the numbers while it lasts.
- **ongoing**: while it stays open every day is compared with that reference, not with a rolling
  window. Quiet, except a *worsening* (today's upper 95% bound is ``worsen_by`` below what on-call
  last heard) and a *reminder* every ``remind_every_days`` (a lasting level shift: accept it or fix it).
- **covered**: while a drop over all responses is watched (or found today), a segment's drop is
  part of it (the message's "where it dropped" names the segments), not a regression of its own: a
  small segment's noise must not page on its own in the middle of an incident.
- **recovered**: back within ``recover_within`` of the reference (today's upper 95% bound reaches
  ``reference - recover_within``) for ``recover_days`` days running. One good day of noise does not
  close it, one bad day resets the count.

Pure functions: :mod:`judgeflow.storage.alert_store` keeps the state, the alert step decides when a
run may move it (only the newest interval judged so far does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Stage(StrEnum):
    PENDING = "pending"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Level:
    """A mean with its 95% interval over ``n`` values (a day's, or a baseline's)."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True, slots=True)
class Reference:
    """The level a regression dropped from, frozen when it was first found: ``level`` over ``[start, end)``."""

    level: Level
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True, slots=True)
class OpenRegression:
    """A regression being watched: what on-call last heard (``difference``), its reference, its days.

    ``opened_at`` is the end of the interval that first found it; ``last_told_at`` the end of the
    interval of the last message about it; ``moved_for`` the newest interval that moved this row, so a
    rerun of that interval does not count a day twice. ``reference`` is ``None`` for a row saved
    before references existed: the next run freezes today's baseline into it."""

    key: str
    difference: float
    opened_at: dt.datetime
    reference: Reference | None = None
    stage: Stage = Stage.OPEN
    last_told_at: dt.datetime | None = None
    back_days: int = 0
    seen_days: int = 1
    moved_for: dt.datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.stage is Stage.OPEN

    @property
    def down_since(self) -> dt.datetime:
        """The start of the first day found down (the reference window's end)."""
        return self.reference.end if self.reference is not None else self.opened_at - dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Rules:
    """The lifecycle's knobs, from :class:`judgeflow.config.AlertConfig`."""

    worsen_by: float
    recover_within: float
    recover_days: int = 2
    open_after_days: int = 1
    remind_every_days: int = 7


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """What today changes. ``state`` is what to store once on-call has been told (or right away when
    nothing is to be told); ``closed`` the regressions that recovered today, for the history."""

    new: tuple[str, ...] = ()
    worsening: tuple[str, ...] = ()
    reminders: tuple[str, ...] = ()
    ongoing: tuple[str, ...] = ()
    recovered: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    differences: Mapping[str, float] = field(default_factory=dict)
    state: Mapping[str, OpenRegression] = field(default_factory=dict)
    closed: Mapping[str, OpenRegression] = field(default_factory=dict)

    @property
    def tells_on_call(self) -> bool:
        return bool(self.new or self.worsening or self.recovered or self.reminders)

    @property
    def announced(self) -> set[str]:
        return {*self.new, *self.worsening}


def plan_alerts(
    known: Mapping[str, OpenRegression],
    regressed: Mapping[str, float],
    *,
    today: Mapping[str, Level],
    references: Mapping[str, Reference],
    rules: Rules,
    interval_end: dt.datetime,
) -> AlertPlan:
    """Sort today against what on-call knows.

    ``regressed``: today's significant drops (key → difference against the rolling baseline, negative);
    ``today``: today's level of every key compared; ``references``: the baseline each of today's
    regressions was found against (frozen for a key seen for the first time). ``interval_end`` is the
    end of the judged interval: every time in the state comes from the data, never the clock."""
    plan = _Planner(rules, interval_end, today)
    # a drop over all responses covers when it is found today or already open; a pending one not found
    # today is forgotten below and covers nothing
    covering = any(
        not is_segment_key(k) and (k in regressed or (k in known and known[k].is_open))
        for k in known.keys() | regressed.keys()
    )
    for key in sorted({*known, *regressed}):
        row = known.get(key)
        if covering and is_segment_key(key) and (row is None or not row.is_open):
            if row is not None:  # pending: keeps its days running for when the cover is gone
                plan.state[key] = row
            continue  # part of the drop over all responses: its message says where, not a regression of its own
        plan.step(key, row, regressed.get(key), references.get(key))
    return plan.result()


class _Planner:
    def __init__(self, rules: Rules, interval_end: dt.datetime, today: Mapping[str, Level]) -> None:
        self.rules, self.end, self.today = rules, interval_end, today
        self.sorted: dict[str, list[str]] = {k: [] for k in ("new", "worse", "remind", "ongoing", "recovered", "pend")}
        self.differences: dict[str, float] = {}
        self.state: dict[str, OpenRegression] = {}
        self.closed: dict[str, OpenRegression] = {}

    def step(self, key: str, row: OpenRegression | None, drop: float | None, found: Reference | None) -> None:
        if row is None or not row.is_open:
            self._seen(key, row, drop, found)
        else:
            self._watch(key, row, found)

    def _seen(self, key: str, row: OpenRegression | None, drop: float | None, found: Reference | None) -> None:
        """A key not open yet: found down again (or for the first time), or forgotten."""
        if drop is None:
            return  # a pending key not found down today is forgotten
        seen = (row.seen_days + 1) if row is not None else 1
        reference = row.reference if row is not None and row.reference is not None else found
        opened = row.opened_at if row is not None else self.end
        candidate = OpenRegression(key, drop, opened, reference, Stage.PENDING, None, 0, seen, self.end)
        if seen < self.rules.open_after_days:
            self.sorted["pend"].append(key)
            self.state[key] = candidate
            return
        difference = self._against(key, reference, drop)
        self.sorted["new"].append(key)
        self.differences[key] = difference
        self.state[key] = dataclasses.replace(candidate, stage=Stage.OPEN, difference=difference, last_told_at=self.end)

    def _watch(self, key: str, row: OpenRegression, found: Reference | None) -> None:
        """An open key, measured against its frozen reference."""
        reference = row.reference or found
        row = dataclasses.replace(row, reference=reference, moved_for=self.end)
        level = self.today.get(key)
        if level is None or reference is None:
            self.sorted["ongoing"].append(key)  # no data today: nothing moves
            self.state[key] = row
            return
        ref = reference.level.mean
        difference = level.mean - ref
        self.differences[key] = difference
        if level.high >= ref - self.rules.recover_within:
            back = row.back_days + 1
            if back >= self.rules.recover_days:
                self.sorted["recovered"].append(key)
                self.closed[key] = dataclasses.replace(row, difference=difference, back_days=back)
                return
            self.sorted["ongoing"].append(key)
            self.state[key] = dataclasses.replace(row, back_days=back)
            return
        row = dataclasses.replace(row, back_days=0)
        if level.high < ref + row.difference - self.rules.worsen_by:
            self.sorted["worse"].append(key)
            self.state[key] = dataclasses.replace(row, difference=difference, last_told_at=self.end)
        elif self._reminder_due(row):
            self.sorted["remind"].append(key)
            self.state[key] = dataclasses.replace(row, last_told_at=self.end)
        else:
            self.sorted["ongoing"].append(key)
            self.state[key] = row

    def _reminder_due(self, row: OpenRegression) -> bool:
        every = self.rules.remind_every_days
        told = row.last_told_at or row.opened_at
        return every > 0 and self.end - told >= dt.timedelta(days=every)

    def _against(self, key: str, reference: Reference | None, drop: float) -> float:
        level = self.today.get(key)
        return drop if level is None or reference is None else level.mean - reference.level.mean

    def result(self) -> AlertPlan:
        s = self.sorted
        return AlertPlan(
            new=tuple(s["new"]),
            worsening=tuple(s["worse"]),
            reminders=tuple(s["remind"]),
            ongoing=tuple(s["ongoing"]),
            recovered=tuple(s["recovered"]),
            pending=tuple(s["pend"]),
            differences=self.differences,
            state=self.state,
            closed=self.closed,
        )


def regression_key(metric: str, segment: str | None = None) -> str:
    return f"{metric}{SEGMENT_JOIN}{segment}" if segment else metric


SEGMENT_JOIN = " in "


def is_segment_key(key: str) -> bool:
    """``accuracy in topic=shipping`` is a segment's; ``accuracy`` and ``rolling average`` are all responses'."""
    return SEGMENT_JOIN in key
