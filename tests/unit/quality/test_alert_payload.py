"""The alert on-call reads, asserted whole: the fallback text and every Block Kit block.

``test_alerts.py`` checks pieces (a reason here, a limit there); these pin the exact wording,
numbers, field names, block types and buttons of a few representative days, so a change to any of
them shows up as a diff of the message itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import pytest

from judgeflow.quality.alert_state import AlertPlan, Level, OpenRegression, Reference
from judgeflow.quality.alerts import (
    AlertContext,
    SegmentExample,
    airflow_run_url,
    build_alert_blocks,
    decide_alert,
    format_regression_line,
    truncate_lines,
)
from judgeflow.quality.regression import ComparisonStatus
from judgeflow.quality.root_cause import DropKind, RootCause, SegmentShare
from tests.unit.quality.test_alerts import REGRESSED, START, comparison, context, report

RUN_URL = "http://localhost:8080/dags/judgeflow_daily/runs/scheduled__2025-03-08T00%3A00%3A00%2B00%3A00"
RUN_LINE = (
    "dag judgeflow_daily · run scheduled__2025-03-08T00:00:00+00:00 · "
    "interval 2025-03-08 00:00 UTC → 2025-03-09 00:00 UTC"
)
RUN_BUTTON = {
    "type": "button",
    "text": {"type": "plain_text", "text": "Open the run in Airflow"},
    "url": RUN_URL,
    "action_id": "judgeflow_open_run",
}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def numbers(**values: str) -> dict[str, Any]:
    """The numbers section, in its order: rolling average, scored, judge errors, coverage, budget, cost."""
    names = ("Rolling average", "Scored", "Judge errors", "Coverage", "Left for budget", "Cost")
    assert len(values) == len(names)
    return {"type": "section", "fields": [mrkdwn(f"*{n}*\n{v}") for n, v in zip(names, values.values(), strict=True)]}


def run_context(line: str = RUN_LINE) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(line)]}


def message(ctx: AlertContext) -> tuple[str, list[dict[str, Any]]]:
    return build_alert_blocks(ctx, decide_alert(ctx))


def test_a_quiet_day_is_the_headline_the_numbers_and_the_run() -> None:
    text, blocks = message(context())

    assert text == "judgeflow: helpfulness (v3) looks fine, 2025-03-08"
    assert blocks == [
        header("judgeflow: helpfulness (v3) looks fine, 2025-03-08"),
        numbers(
            rolling="3.90 vs threshold 3.00 (n=1400)",
            scored="196 of 200 extracted (20 from cache)",
            errors="4 (2.0%), 0 unparseable verdicts",
            coverage="98.0% scored",
            budget="0",
            cost="$1.23",
        ),
        run_context(),
        {"type": "actions", "elements": [RUN_BUTTON]},
    ]


def test_a_day_with_nothing_extracted_says_so_instead_of_dividing_by_zero() -> None:
    ctx = context(extracted=0, scored=0, from_cache=0, errors=0, rolling_average=None, rolling_count=0, run_url="")

    text, blocks = message(ctx)

    assert text == "judgeflow: helpfulness (v3) looks fine, 2025-03-08"
    assert blocks == [
        header(text),
        numbers(
            rolling="no scores (threshold 3.00)",
            scored="0 of 0 extracted (0 from cache)",
            errors="0 (0.0%), 0 unparseable verdicts",
            coverage="nothing extracted",
            budget="0",
            cost="$1.23",
        ),
        run_context(),
    ]


def test_a_regression_with_segments_root_cause_and_where_it_dropped() -> None:
    """The full drop message: a sampled suite, a budget, a local root cause, four segments of which three are shown."""
    shipping = dataclasses.replace(
        comparison("overall", baseline=4.0, current=2.5, p=0.0004, n=(84, 36)),
        segment="topic=shipping",
        days_pooled=3,
        mde=0.58,
    )
    billing = dataclasses.replace(
        comparison("accuracy", baseline=3.9, current=3.1, p=0.02, n=(50, 40)), segment="topic=billing", mde=None
    )
    stable = comparison("tone", baseline=4.3, current=4.2, p=0.5, status=ComparisonStatus.STABLE)
    cause = RootCause(DropKind.LOCAL, column="topic", shares=(SegmentShare("topic=shipping", -1.5, 0.3, 0.8, 3),))
    drops = report(comparison("overall", baseline=4.0, current=3.6, p=0.01), shipping, billing, stable)
    where = tuple(
        SegmentExample(
            segment=f"topic=s{i}",
            n=40 + i,
            mean=1.8,
            pull=-0.42,
            response_id=f"97{i}",
            score=1.0,
            rationale="told the <customer> to email refunds@shop.example",
        )
        for i in range(4)
    )
    plus_two = dt.timezone(dt.timedelta(hours=2))
    ctx = context(
        report=dataclasses.replace(drops, root_cause=cause),
        rolling_average=2.8,
        where=where,
        report_url="http://localhost:8080/judgeflow/report/1",
        budget_usd=20.0,
        malformed=1,
        sample_rate=0.1,
        interval_start=dt.datetime(2025, 3, 8, 1, 30, tzinfo=plus_two),
        interval_end=dt.datetime(2025, 3, 9, 1, 30, tzinfo=plus_two),
    )

    text, blocks = message(ctx)

    headline = "judgeflow: quality drop in helpfulness (v3), 2025-03-07 23:30 → 2025-03-08 23:30 UTC"
    assert text == (
        f"{headline}: rolling average 2.80 is below the threshold 3.00 (n=1400, sample rate 10%); "
        "significant regression in overall, overall in topic=shipping, accuracy in topic=billing"
    )
    worst = "scored 1.0: _told the &lt;customer&gt; to email [email]_"
    assert blocks == [
        header(headline),
        section(
            "*Why*\n"
            "• rolling average 2.80 is below the threshold 3.00 (n=1400, sample rate 10%)\n"
            "• significant regression in overall, overall in topic=shipping, accuracy in topic=billing"
        ),
        numbers(
            rolling="2.80 vs threshold 3.00 (n=1400, sample rate 10%)",
            scored="196 of 200 extracted (20 from cache)",
            errors="4 (2.0%), 1 unparseable verdicts",
            coverage="98.0% scored",
            budget="0",
            cost="$1.23 of $20.00 budget",
        ),
        section(
            "*Regressed metrics* (baseline → current)\n"
            "• overall: 4.00 → 3.60 (\u22120.40), p=0.010, n=120 vs 140\n"
            "• overall [topic=shipping]: 4.00 → 2.50 (\u22121.50), p&lt;0.001, n=84 vs 36, over 3 days, detects ≥0.58\n"
            "• accuracy [topic=billing]: 3.90 → 3.10 (\u22120.80), p=0.020, n=50 vs 40"
        ),
        section(
            "*Root cause*\nlocal: topic=shipping carries 80% of the decline (\u22121.50 over 3 days, 30% of traffic)"
        ),
        section(
            "*Where it dropped*\n"
            f"• topic=s0: mean 1.80 over 40, pulls the average by \u22120.42; worst #970 {worst}\n"
            f"• topic=s1: mean 1.80 over 41, pulls the average by \u22120.42; worst #971 {worst}\n"
            f"• topic=s2: mean 1.80 over 42, pulls the average by \u22120.42; worst #972 {worst}"
        ),
        run_context(
            "dag judgeflow_daily · run scheduled__2025-03-08T00:00:00+00:00 · "
            "interval 2025-03-07 23:30 UTC → 2025-03-08 23:30 UTC"
        ),
        {
            "type": "actions",
            "elements": [
                RUN_BUTTON,
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Open the report"},
                    "url": "http://localhost:8080/judgeflow/report/1",
                    "action_id": "judgeflow_open_report",
                },
            ],
        },
    ]


def test_an_unhealthy_judge_and_a_spent_budget_are_both_told() -> None:
    """One judge error in ten is above 5%; the response the budget held back is not a judge error."""
    ctx = context(extracted=10, scored=8, from_cache=0, errors=2, left_for_budget=1, cost_usd=1234.5, budget_usd=5000.0)

    text, blocks = message(ctx)

    assert text == (
        "judgeflow: judge errors in helpfulness (v3), 2025-03-08: judge errors: 1 of 10 responses (10.0%) above 5%; "
        "budget cap reached: 1 responses left unscored for the next run"
    )
    assert blocks == [
        header("judgeflow: judge errors in helpfulness (v3), 2025-03-08"),
        section(
            "*Why*\n• judge errors: 1 of 10 responses (10.0%) above 5%\n"
            "• budget cap reached: 1 responses left unscored for the next run"
        ),
        numbers(
            rolling="3.90 vs threshold 3.00 (n=1400)",
            scored="8 of 10 extracted (0 from cache)",
            errors="1 (10.0%), 0 unparseable verdicts",
            coverage="80.0% scored",
            budget="1",
            cost="$1,234.50 of $5,000.00 budget",
        ),
        run_context(),
        {"type": "actions", "elements": [RUN_BUTTON]},
    ]


def test_a_spent_budget_alone_has_its_own_headline() -> None:
    ctx = context(errors=1, left_for_budget=1)

    decision = decide_alert(ctx)
    text, _ = build_alert_blocks(ctx, decision)

    assert decision.reasons == ("budget cap reached: 1 responses left unscored for the next run",)
    assert text == (
        "judgeflow: budget reached in helpfulness (v3), 2025-03-08: "
        "budget cap reached: 1 responses left unscored for the next run"
    )


REFERENCE = Reference(Level(3.9, 3.8, 4.0, 900), START - dt.timedelta(days=7), START)


def open_row(key: str, difference: float, **changes: Any) -> OpenRegression:
    return OpenRegression(
        key=key, difference=difference, opened_at=START - dt.timedelta(days=3), reference=REFERENCE, **changes
    )


def test_with_a_plan_only_what_is_new_or_worse_is_announced() -> None:
    """The rolling average on-call already knows is not repeated; each line of the plan is told once."""
    plan = AlertPlan(
        new=("accuracy",),
        worsening=("overall",),
        reminders=("tone",),
        recovered=("clarity", "brevity"),
        differences={"tone": -0.3, "clarity": -0.05},
        state={
            "accuracy": open_row("accuracy", -0.9),
            "overall": open_row("overall", -0.4),
            "tone": open_row("tone", -0.35),
        },
        closed={"clarity": open_row("clarity", -0.5, back_days=1)},
    )
    ctx = context(rolling_average=2.8, report=REGRESSED, plan=plan)

    text, blocks = message(ctx)

    reasons = [
        "significant regression in overall (worse since the last alert), accuracy",
        "accuracy: measured against 3.90 (95% 3.80 to 4.00, n=900, 2025-03-01 → 2025-03-08) until it recovers",
        "tone still 0.30 below the level before 2025-03-08 (3.90)",
        'accept a lasting shift as the new normal with `judgeflow alerts accept helpfulness "tone" --reason "..."`',
        "recovered: clarity (at 3.85, back to the level before 2025-03-08, 3.90, for 1 day), brevity",
    ]
    assert decide_alert(ctx).reasons == tuple(reasons)
    headline = "judgeflow: quality drop in helpfulness (v3), 2025-03-08"
    assert text == f"{headline}: " + "; ".join(reasons)
    assert blocks[:2] == [header(headline), section("*Why*\n" + "\n".join(f"• {r}" for r in reasons))]


def test_a_plan_with_only_reminders_says_still_down_and_keeps_known_drops_quiet() -> None:
    plan = AlertPlan(reminders=("tone",), differences={"tone": -0.3}, state={"tone": open_row("tone", -0.35)})
    ctx = context(rolling_average=2.8, report=REGRESSED, plan=plan)

    text, _ = message(ctx)

    assert text == (
        "judgeflow: helpfulness (v3) still down, 2025-03-08: tone still 0.30 below the level before 2025-03-08 (3.90); "
        'accept a lasting shift as the new normal with `judgeflow alerts accept helpfulness "tone" --reason "..."`'
    )


def test_a_plan_announcing_the_rolling_average_says_it() -> None:
    plan = AlertPlan(new=("rolling average",), state={})
    ctx = context(rolling_average=2.8, plan=plan)

    assert decide_alert(ctx).reasons == ("rolling average 2.80 is below the threshold 3.00 (n=1400)",)


def test_a_plan_with_only_recoveries_says_recovered() -> None:
    plan = AlertPlan(recovered=("accuracy",))
    ctx = context(plan=plan)

    text, _ = message(ctx)

    assert text == "judgeflow: helpfulness (v3) recovered, 2025-03-08: recovered: accuracy"


def test_segment_regressions_are_keyed_by_metric_and_segment() -> None:
    """A plan that announced only ``accuracy in topic=billing`` names that row, not ``accuracy`` over all responses."""
    billing = dataclasses.replace(comparison("accuracy"), segment="topic=billing")
    ctx = context(report=report(comparison("accuracy"), billing), plan=AlertPlan(new=("accuracy in topic=billing",)))

    assert decide_alert(ctx).reasons == ("significant regression in accuracy in topic=billing",)


@pytest.mark.parametrize(
    ("cause", "shown"),
    [
        pytest.param(DropKind.GLOBAL, True, id="global"),
        pytest.param(DropKind.LOCAL, True, id="local"),
        pytest.param(DropKind.UNKNOWN, False, id="unknown"),
        pytest.param(DropKind.NONE, False, id="none"),
    ],
)
def test_the_root_cause_is_shown_only_when_it_says_something(cause: DropKind, shown: bool) -> None:
    share = SegmentShare("topic=a@b.example", -1.0, 0.5, 1.0)
    root = RootCause(cause, column="topic", shares=(share,))
    ctx = context(report=dataclasses.replace(REGRESSED, root_cause=root))

    _, blocks = message(ctx)

    found = [b for b in blocks if b.get("text", {}).get("text", "").startswith("*Root cause*")]
    assert found == ([section(f"*Root cause*\n{root.text.replace('a@b.example', '[email]')}")] if shown else [])


def test_where_it_dropped_needs_a_regression() -> None:
    example = SegmentExample("topic=a", 40, 1.8, -0.4, "1", 1.0, "bad")

    _, blocks = message(context(where=(example,)))

    assert "Where it dropped" not in repr(blocks)


def test_a_long_rationale_is_cut_to_200_characters() -> None:
    example = SegmentExample("topic=a", 40, 1.8, -0.4, "1", 1.0, "x" * 300)

    _, blocks = message(context(report=REGRESSED, where=(example,)))

    [where] = [b for b in blocks if "Where it dropped" in repr(b)]
    assert where["text"]["text"].endswith(f"_{'x' * 199}…_")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("h", True, id="one-char"),
        pytest.param("h" * 3000, True, id="at-limit"),
        pytest.param("h" * 3001, False, id="too-long"),
    ],
)
def test_a_button_is_kept_when_its_url_fits_slack(url: str, shown: bool) -> None:
    _, blocks = message(context(run_url=url))

    assert (blocks[-1]["type"] == "actions") is shown


def test_the_run_line_is_in_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        _, blocks = message(context())
    finally:
        monkeypatch.undo()
        time.tzset()

    assert blocks[-2] == run_context()


def test_truncate_lines_fills_to_the_limit_exactly() -> None:
    """A line fits when the text with it (and the "… and n more" a later cut needs) is at most ``limit``."""
    two, three = ["aaaa", "bbbb"], ["aaaa", "bbbb", "cccc"]
    # "T\naaaa" (6) and "\n… and 2 more" (13) make 19: the first line fits with room for the count
    assert truncate_lines("T", two, limit=19) == "T\naaaa\nbbbb"
    assert truncate_lines("T", two, limit=18) == "T\n… and 2 more"
    assert truncate_lines("T", three, limit=23) == "T\naaaa\n… and 2 more"
    assert truncate_lines("T", three, limit=24) == "T\naaaa\nbbbb\ncccc"
    # the last line needs no room for a count
    assert truncate_lines("T", ["aaaa"], limit=6) == "T\naaaa"


def test_airflow_run_url_quotes_slashes_and_trims_the_base() -> None:
    url = airflow_run_url("http://af:8080/X//", dag_id="team/daily", run_id="manual/1 2")

    assert url == "http://af:8080/X/dags/team%2Fdaily/runs/manual%2F1%202"


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        pytest.param(
            {"baseline_mean": None, "difference": None},
            "accuracy: n/a → 3.20 (n/a), p=0.001, n=0 vs 140",
            id="no-baseline",
        ),
        pytest.param(
            {"segment": "topic=a", "days_pooled": 2},
            "accuracy [topic=a]: 4.10 → 3.20 (\u22120.90), p=0.001, n=0 vs 140, over 2 days",
            id="segment-two-days",
        ),
        pytest.param(
            {"segment": "topic=a", "mde": 0.304},
            "accuracy [topic=a]: 4.10 → 3.20 (\u22120.90), p=0.001, n=0 vs 140, detects ≥0.30",
            id="segment-one-day",
        ),
        pytest.param(
            {"days_pooled": 3, "mde": 0.3},
            "accuracy: 4.10 → 3.20 (\u22120.90), p=0.001, n=0 vs 140",
            id="all-responses",
        ),
    ],
)
def test_regression_line_without_a_baseline_and_for_segments(changes: dict[str, Any], line: str) -> None:
    """A missing mean reads ``n/a``; only a segment row says its pooled days and what it could detect."""
    row = dataclasses.replace(comparison(n=(0, 140)), **changes)

    assert format_regression_line(row) == line


def test_a_regression_alone_is_a_quality_drop() -> None:
    """The rolling average is above its threshold: the significant regression is enough to call it a drop."""
    text, _ = message(context(report=REGRESSED))

    assert (
        text == "judgeflow: quality drop in helpfulness (v3), 2025-03-08: significant regression in overall, accuracy"
    )
