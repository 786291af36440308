"""A regression's life: pending, announced once against a frozen reference, quiet while it lasts (but for
worsening and reminders), recovered after ``recover_days`` days running back within ``recover_within``."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from judgeflow.quality.alert_state import (
    AlertPlan,
    Level,
    OpenRegression,
    Reference,
    Rules,
    Stage,
    is_segment_key,
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


# Exact binary numbers below (quarters), so that whole plans compare equal without approximations.
EXACT = Reference(Level(3.5, 3.25, 3.75, 200), DAY1_END - 8 * DAY, DAY1_END - DAY)
DAY2_END, DAY3_END = DAY1_END + DAY, DAY1_END + 2 * DAY
QUARTERS = Rules(worsen_by=0.25, recover_within=0.25, recover_days=2, open_after_days=1, remind_every_days=7)


def level(mean: float, half: float = 0.25) -> Level:
    return Level(mean, mean - half, mean + half, 32)


def opened_on_day1(key: str = KEY) -> OpenRegression:
    """What day 1 stored for a drop of -1.0 from ``EXACT`` announced at once."""
    return OpenRegression(key, -1.0, DAY1_END, EXACT, Stage.OPEN, DAY1_END, 0, 1, DAY1_END)


def test_a_new_regression_is_stored_exactly_as_announced_with_every_time_from_the_data() -> None:
    plan = plan_alerts(
        {}, {KEY: -1.0}, today={KEY: level(2.5)}, references={KEY: EXACT}, rules=QUARTERS, interval_end=DAY1_END
    )
    assert plan == AlertPlan(new=(KEY,), differences={KEY: -1.0}, state={KEY: opened_on_day1()})


def test_a_pending_drop_counts_its_days_and_is_announced_against_the_reference_of_its_first_day() -> None:
    """The rolling baseline takes in the bad days (3.0 on day 2): the drop against it shrinks, but on-call
    hears the difference from the level it dropped from, frozen on the first day."""
    rules = dataclasses.replace(QUARTERS, open_after_days=3)
    rolling = Reference(Level(3.0, 2.75, 3.25, 200), DAY1_END - 7 * DAY, DAY1_END)
    day1 = plan_alerts(
        {}, {KEY: -1.0}, today={KEY: level(2.5)}, references={KEY: EXACT}, rules=rules, interval_end=DAY1_END
    )
    pending1 = OpenRegression(KEY, -1.0, DAY1_END, EXACT, Stage.PENDING, None, 0, 1, DAY1_END)
    assert day1 == AlertPlan(pending=(KEY,), state={KEY: pending1})
    day2 = plan_alerts(
        dict(day1.state),
        {KEY: -0.5},
        today={KEY: level(2.5)},
        references={KEY: rolling},
        rules=rules,
        interval_end=DAY2_END,
    )
    pending2 = OpenRegression(KEY, -0.5, DAY1_END, EXACT, Stage.PENDING, None, 0, 2, DAY2_END)
    assert day2 == AlertPlan(pending=(KEY,), state={KEY: pending2})
    day3 = plan_alerts(
        dict(day2.state),
        {KEY: -0.5},
        today={KEY: level(2.5)},
        references={KEY: rolling},
        rules=rules,
        interval_end=DAY3_END,
    )
    announced = OpenRegression(KEY, -1.0, DAY1_END, EXACT, Stage.OPEN, DAY3_END, 0, 3, DAY3_END)
    assert day3 == AlertPlan(new=(KEY,), differences={KEY: -1.0}, state={KEY: announced})


def test_a_drop_without_a_level_or_a_reference_today_is_announced_with_its_own_difference() -> None:
    """A comparison saved before levels (or references) existed has none: the drop against the
    baseline is then what on-call hears."""
    for levels, references in (({}, {KEY: EXACT}), ({KEY: level(2.5)}, {})):
        plan = plan_alerts({}, {KEY: -0.75}, today=levels, references=references, rules=QUARTERS, interval_end=DAY1_END)
        row = OpenRegression(KEY, -0.75, DAY1_END, references.get(KEY), Stage.OPEN, DAY1_END, 0, 1, DAY1_END)
        assert plan == AlertPlan(new=(KEY,), differences={KEY: -0.75}, state={KEY: row})


def test_an_open_regression_without_any_reference_waits_quietly_for_one() -> None:
    """A row saved before references existed, not found down today (so no baseline is taken): nothing
    to measure against, it stays as it is but for the interval that moved it."""
    old = OpenRegression(KEY, -1.0, DAY1_END)
    plan = plan_alerts({KEY: old}, {}, today={KEY: level(2.5)}, references={}, rules=QUARTERS, interval_end=DAY2_END)
    assert plan == AlertPlan(ongoing=(KEY,), state={KEY: dataclasses.replace(old, moved_for=DAY2_END)})


def test_worse_means_strictly_below_what_on_call_heard_less_worsen_by() -> None:
    known = {KEY: opened_on_day1()}
    # upper bound 2.25 == 3.5 - 1.0 - 0.25: not below it, quiet
    quiet = plan_alerts(
        known, {KEY: -1.5}, today={KEY: level(2.0)}, references={}, rules=QUARTERS, interval_end=DAY2_END
    )
    moved = dataclasses.replace(opened_on_day1(), moved_for=DAY2_END)
    assert quiet == AlertPlan(ongoing=(KEY,), differences={KEY: -1.5}, state={KEY: moved})
    worse = plan_alerts(
        known, {KEY: -1.75}, today={KEY: level(1.75)}, references={}, rules=QUARTERS, interval_end=DAY2_END
    )
    told = dataclasses.replace(moved, difference=-1.75, last_told_at=DAY2_END)
    assert worse == AlertPlan(worsening=(KEY,), differences={KEY: -1.75}, state={KEY: told})


def test_back_within_recover_within_at_the_boundary_counts_and_the_closed_row_keeps_its_last_numbers() -> None:
    """Upper bound 3.25 == 3.5 - 0.25 counts as back; two such days close it."""
    known = {KEY: opened_on_day1()}
    day2 = plan_alerts(known, {}, today={KEY: level(3.0)}, references={}, rules=QUARTERS, interval_end=DAY2_END)
    back1 = dataclasses.replace(opened_on_day1(), back_days=1, moved_for=DAY2_END)
    assert day2 == AlertPlan(ongoing=(KEY,), differences={KEY: -0.5}, state={KEY: back1})
    day3 = plan_alerts(
        dict(day2.state), {}, today={KEY: level(3.0)}, references={}, rules=QUARTERS, interval_end=DAY3_END
    )
    closed = dataclasses.replace(back1, difference=-0.5, back_days=2, moved_for=DAY3_END)
    assert day3 == AlertPlan(recovered=(KEY,), differences={KEY: -0.5}, closed={KEY: closed})


def test_a_daily_reminder_is_due_one_day_after_the_last_message() -> None:
    rules = dataclasses.replace(QUARTERS, remind_every_days=1)
    plan = plan_alerts(
        {KEY: opened_on_day1()}, {KEY: -1.0}, today={KEY: level(2.5)}, references={}, rules=rules, interval_end=DAY2_END
    )
    reminded = dataclasses.replace(opened_on_day1(), last_told_at=DAY2_END, moved_for=DAY2_END)
    assert plan == AlertPlan(reminders=(KEY,), differences={KEY: -1.0}, state={KEY: reminded})


def test_an_open_drop_over_all_responses_covers_a_segment_and_a_forgotten_pending_one_does_not() -> None:
    segment = regression_key("overall", "topic=shipping")
    levels = {KEY: level(2.5), segment: level(2.0)}
    still_open = plan_alerts(
        {KEY: opened_on_day1()},
        {segment: -1.5},
        today=levels,
        references={segment: EXACT},
        rules=QUARTERS,
        interval_end=DAY2_END,
    )
    assert (still_open.new, still_open.ongoing, set(still_open.state)) == ((), (KEY,), {KEY}), (
        "not found today, still open"
    )
    rules = dataclasses.replace(QUARTERS, open_after_days=2)
    known = {
        KEY: OpenRegression(KEY, -1.0, DAY1_END, EXACT, Stage.PENDING, None, 0, 1, DAY1_END),
        segment: OpenRegression(segment, -1.5, DAY1_END, EXACT, Stage.PENDING, None, 0, 1, DAY1_END),
    }
    forgotten = plan_alerts(
        known, {segment: -1.5}, today=levels, references={segment: EXACT}, rules=rules, interval_end=DAY2_END
    )
    assert (forgotten.new, set(forgotten.state)) == ((segment,), {segment}), "one day of noise covers nothing"


def test_under_cover_a_pending_segment_keeps_its_days_an_open_one_is_still_watched_and_later_keys_are_planned() -> None:
    billing, shipping, tone = (
        regression_key("overall", "topic=billing"),
        regression_key("overall", "topic=shipping"),
        "tone",
    )
    rules = dataclasses.replace(QUARTERS, open_after_days=2)
    billing_row = opened_on_day1(billing)
    shipping_row = OpenRegression(shipping, -1.5, DAY1_END, EXACT, Stage.PENDING, None, 0, 1, DAY1_END)
    known = {KEY: OpenRegression(KEY, -1.0, DAY1_END, EXACT, Stage.PENDING, None, 0, 1, DAY1_END)}
    known |= {billing: billing_row, shipping: shipping_row}
    plan = plan_alerts(
        known,
        {KEY: -1.0, shipping: -1.5, tone: -0.75},
        today={KEY: level(2.5), billing: level(3.5), shipping: level(2.0), tone: level(2.75)},
        references={KEY: EXACT, shipping: EXACT, tone: EXACT},
        rules=rules,
        interval_end=DAY2_END,
    )
    assert plan == AlertPlan(
        new=(KEY,),
        ongoing=(billing,),
        pending=(tone,),
        differences={KEY: -1.0, billing: 0.0},
        state={
            KEY: OpenRegression(KEY, -1.0, DAY1_END, EXACT, Stage.OPEN, DAY2_END, 0, 2, DAY2_END),
            billing: dataclasses.replace(billing_row, back_days=1, moved_for=DAY2_END),
            shipping: shipping_row,
            tone: OpenRegression(tone, -0.75, DAY2_END, EXACT, Stage.PENDING, None, 0, 1, DAY2_END),
        },
    )


def test_a_key_names_the_metric_and_its_segment_when_there_is_one() -> None:
    assert [regression_key("accuracy"), regression_key("accuracy", None), regression_key("accuracy", "")] == [
        "accuracy"
    ] * 3
    assert regression_key("accuracy", "topic=shipping") == "accuracy in topic=shipping"
    assert [is_segment_key("accuracy"), is_segment_key("accuracy in topic=shipping")] == [False, True]
