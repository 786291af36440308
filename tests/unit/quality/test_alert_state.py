"""Open regressions are announced once, again when they worsen, and once more when they recover."""

from __future__ import annotations

import datetime as dt

from judgeflow.quality.alert_state import OpenRegression, plan_alerts, regression_key

DAY1 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DAY2 = DAY1 + dt.timedelta(days=1)


def test_a_new_regression_is_announced_then_stays_quiet_then_recovers() -> None:
    key = regression_key("accuracy", "topic=shipping")
    day1 = plan_alerts({}, {key: -0.9}, worsen_by=0.25)
    assert (day1.new, day1.tells_on_call) == ((key,), True)
    known = day1.open_after({}, DAY1)
    assert known == {key: OpenRegression(key, -0.9, DAY1)}

    day2 = plan_alerts(known, {key: -1.0}, worsen_by=0.25)
    assert (day2.ongoing, day2.tells_on_call) == ((key,), False), "same drop: no second alert"
    assert day2.open_after(known, DAY2) == known

    day3 = plan_alerts(known, {}, worsen_by=0.25)
    assert (day3.recovered, day3.tells_on_call) == ((key,), True)
    assert day3.open_after(known, DAY2) == {}


def test_a_regression_that_worsens_is_announced_again_and_keeps_its_start() -> None:
    key = regression_key("overall")
    known = {key: OpenRegression(key, -0.5, DAY1)}
    plan = plan_alerts(known, {key: -0.8}, worsen_by=0.25)
    assert plan.worsening == (key,)
    assert plan.open_after(known, DAY2) == {key: OpenRegression(key, -0.8, DAY1)}


def test_several_at_once_are_sorted_into_their_kinds() -> None:
    known = {"a": OpenRegression("a", -1.0, DAY1), "b": OpenRegression("b", -1.0, DAY1)}
    plan = plan_alerts(known, {"a": -1.1, "c": -0.4}, worsen_by=0.25)
    assert (plan.new, plan.ongoing, plan.recovered, plan.worsening) == (("c",), ("a",), ("b",), ())


def test_a_regression_that_is_no_longer_significant_but_still_down_stays_open_and_quiet() -> None:
    known = {"overall": OpenRegression("overall", -1.0, DAY1)}
    plan = plan_alerts(known, {}, differences={"overall": -0.4}, worsen_by=0.25, recover_within=0.125)
    assert (plan.ongoing, plan.recovered, plan.tells_on_call) == (("overall",), (), False)
    assert plan.open_after(known, DAY2) == known
    back = plan_alerts(known, {}, differences={"overall": -0.05}, worsen_by=0.25, recover_within=0.125)
    assert back.recovered == ("overall",)
