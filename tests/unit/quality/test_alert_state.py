"""A regression's life: pending, announced once against a frozen reference, quiet while it lasts (but for
worsening and reminders), recovered after ``recover_days`` days running back within ``recover_within``."""

from __future__ import annotations

import datetime as dt

import pytest

from judgeflow.quality.alert_state import (
    AlertPlan,
    Level,
    OpenRegression,
    Reference,
    Rules,
    Stage,
    plan_alerts,
    regression_key,
)

DAY = dt.timedelta(days=1)
DAY1_END = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)  # the run judging 2026-11-20
KEY = regression_key("overall")
REFERENCE = Reference(Level(3.6, 3.5, 3.7, 210), DAY1_END - 8 * DAY, DAY1_END - DAY)
RULES = Rules(worsen_by=0.25, recover_within=0.1, recover_days=2, open_after_days=1, remind_every_days=7)


def today(mean: float, half: float = 0.2) -> dict[str, Level]:
    return {KEY: Level(mean, mean - half, mean + half, 30)}


def step(known: dict[str, OpenRegression], day: int, mean: float, *, rules: Rules = RULES) -> AlertPlan:
    """Day ``day`` (1 = the first bad day): a regression is found when the mean is clearly down."""
    regressed = {KEY: mean - REFERENCE.level.mean} if mean < 3.2 else {}
    end = DAY1_END + (day - 1) * DAY
    return plan_alerts(known, regressed, today=today(mean), references={KEY: REFERENCE}, rules=rules, interval_end=end)


def test_announced_once_then_quiet_reminded_weekly_and_recovered_after_two_days_back() -> None:
    told: dict[int, str] = {}
    known: dict[str, OpenRegression] = {}
    means = {d: 2.4 for d in range(1, 15)} | {15: 3.55, 16: 3.0, 17: 3.6, 18: 3.62}
    for day, mean in means.items():
        plan = step(known, day, mean)
        for kind in ("new", "worsening", "reminders", "recovered"):
            if getattr(plan, kind):
                told[day] = kind
        known = dict(plan.state)
    # day 15 is back (no reminder while recovering), day 16 down again (the count restarts, the
    # reminder now due is sent), 17 and 18 back: recovered on 18, not on the lucky day 15
    assert told == {1: "new", 8: "reminders", 16: "reminders", 18: "recovered"}
    assert known == {}


def test_the_reference_is_frozen_when_found_and_kept_while_the_rolling_numbers_fade() -> None:
    plan = step({}, 1, 2.4)
    assert plan.new == (KEY,) and plan.state[KEY].reference == REFERENCE
    assert plan.state[KEY].difference == pytest.approx(-1.2)
    faded = Reference(Level(2.5, 2.4, 2.6, 210), DAY1_END, DAY1_END + 6 * DAY)  # a rolling baseline of bad days
    later = plan_alerts(
        dict(plan.state), {}, today=today(2.45), references={KEY: faded}, rules=RULES, interval_end=DAY1_END + 6 * DAY
    )
    assert later.ongoing == (KEY,) and later.state[KEY].reference == REFERENCE, "still measured from 3.6"
    assert later.differences[KEY] == pytest.approx(-1.15)


def test_a_drop_must_be_seen_open_after_days_running_before_anyone_hears() -> None:
    rules = Rules(worsen_by=0.25, recover_within=0.1, open_after_days=2)
    first = step({}, 1, 2.4, rules=rules)
    assert (first.pending, first.tells_on_call) == ((KEY,), False)
    assert first.state[KEY].stage is Stage.PENDING
    forgotten = step(dict(first.state), 2, 3.6, rules=rules)
    assert forgotten.state == {} and not forgotten.tells_on_call, "one bad day of noise never pages"
    confirmed = step(dict(first.state), 2, 2.4, rules=rules)
    assert confirmed.new == (KEY,)
    row = confirmed.state[KEY]
    assert (row.stage, row.opened_at, row.reference) == (Stage.OPEN, DAY1_END, REFERENCE), "dated from its first day"


def test_worse_only_when_clearly_below_what_on_call_heard() -> None:
    known = dict(step({}, 1, 2.9).state)  # told -0.7
    noisy = step(known, 2, 2.7)  # upper bound 2.9 is not below 3.6 - 0.7 - 0.25
    assert noisy.worsening == () and noisy.ongoing == (KEY,)
    worse = step(known, 2, 2.3)
    assert worse.worsening == (KEY,) and worse.state[KEY].difference == pytest.approx(-1.3)


def test_no_data_today_moves_nothing_and_a_row_from_before_references_takes_todays_baseline() -> None:
    old = {KEY: OpenRegression(KEY, -1.0, DAY1_END)}
    plan = plan_alerts(old, {}, today={}, references={}, rules=RULES, interval_end=DAY1_END + DAY)
    assert plan.ongoing == (KEY,) and plan.state[KEY].back_days == 0
    adopted = plan_alerts(
        old, {KEY: -1.0}, today=today(2.6), references={KEY: REFERENCE}, rules=RULES, interval_end=DAY1_END + DAY
    )
    assert adopted.state[KEY].reference == REFERENCE


def test_reminders_can_be_switched_off() -> None:
    rules = Rules(worsen_by=0.25, recover_within=0.1, remind_every_days=0)
    known = dict(step({}, 1, 2.4, rules=rules).state)
    for day in range(2, 30):
        plan = step(known, day, 2.4, rules=rules)
        assert not plan.tells_on_call
        known = dict(plan.state)


def test_a_segment_drop_inside_a_drop_over_all_responses_is_not_a_regression_of_its_own() -> None:
    segment = regression_key("overall", "topic=shipping")
    levels = today(2.4) | {segment: Level(2.0, 1.5, 2.5, 6)}
    day1 = plan_alerts(
        {}, {KEY: -1.2, segment: -1.5}, today=levels, references={KEY: REFERENCE}, rules=RULES, interval_end=DAY1_END
    )
    assert day1.new == (KEY,) and segment not in day1.state
    alone = plan_alerts(
        {}, {segment: -1.5}, today=levels, references={segment: REFERENCE}, rules=RULES, interval_end=DAY1_END
    )
    assert alone.new == (segment,), "a drop in one segment alone is a regression of its own"
