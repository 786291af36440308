"""judgeflow.quality.alerts: when to alert, and Block Kit messages Slack accepts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from judgeflow.quality.alerts import (
    HEADER_MAX_CHARS,
    SECTION_MAX_CHARS,
    AlertContext,
    AlertDecision,
    SegmentExample,
    airflow_run_url,
    build_alert_blocks,
    decide_alert,
    format_regression_line,
    redact,
    truncate,
    truncate_lines,
)
from judgeflow.quality.regression import ComparisonStatus, MetricComparison, RegressionReport

START = dt.datetime(2025, 3, 8, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)


def comparison(
    metric: str = "accuracy",
    *,
    baseline: float = 4.1,
    current: float = 3.2,
    p: float | None = 0.001,
    n: tuple[int, int] = (120, 140),
    status: ComparisonStatus = ComparisonStatus.REGRESSION,
) -> MetricComparison:
    return MetricComparison(
        metric=metric,
        baseline_n=n[0],
        baseline_mean=baseline,
        current_n=n[1],
        current_mean=current,
        difference=current - baseline,
        p_value=p,
        status=status,
    )


def report(*comparisons: MetricComparison) -> RegressionReport:
    return RegressionReport(
        current_start=START,
        current_end=END,
        baseline_start=START - dt.timedelta(days=7),
        alpha=0.05,
        min_samples=30,
        min_drop=0.25,
        comparisons=comparisons,
    )


STABLE = report(comparison("overall", baseline=4.0, current=3.95, p=0.4, status=ComparisonStatus.STABLE))
REGRESSED = report(
    comparison("overall", baseline=4.0, current=3.6, p=0.01),
    comparison("accuracy"),
    comparison("tone", baseline=4.3, current=4.2, p=0.5, status=ComparisonStatus.STABLE),
)


def context(**changes: Any) -> AlertContext:
    base = AlertContext(
        dag_id="judgeflow_daily",
        run_id="scheduled__2025-03-08T00:00:00+00:00",
        rubric_name="helpfulness",
        rubric_version="3",
        interval_start=START,
        interval_end=END,
        run_url="http://localhost:8080/dags/judgeflow_daily/runs/scheduled__2025-03-08T00%3A00%3A00%2B00%3A00",
        extracted=200,
        scored=196,
        from_cache=20,
        errors=4,
        cost_usd=1.234,
        rolling_average=3.9,
        rolling_count=1400,
        threshold=3.0,
        report=STABLE,
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    ("changes", "should_alert", "reason_words"),
    [
        pytest.param({}, False, [], id="all-fine"),
        pytest.param({"rolling_average": 2.9}, True, ["rolling average 2.90", "3.00"], id="below-threshold"),
        pytest.param({"rolling_average": 3.0}, False, [], id="at-threshold"),
        pytest.param({"rolling_average": None, "rolling_count": 0}, False, [], id="no-rolling-data"),
        pytest.param({"report": REGRESSED}, True, ["regression in overall, accuracy"], id="regression"),
        pytest.param({"errors": 10}, False, [], id="errors-at-5pct"),
        pytest.param({"errors": 11}, True, ["judge errors: 11 of 200", "5.5%"], id="errors-above-5pct"),
        pytest.param({"errors": 3, "extracted": 0, "scored": 0}, True, ["judge errors"], id="errors-only"),
        pytest.param({"errors": 0, "extracted": 0, "scored": 0}, False, [], id="nothing-extracted"),
    ],
)
def test_decide_alert(changes: dict[str, Any], should_alert: bool, reason_words: list[str]) -> None:
    decision = decide_alert(context(**changes))

    assert decision.should_alert is should_alert
    assert len(decision.reasons) == (1 if should_alert else 0)
    for word in reason_words:
        assert word in decision.reasons[0]


def test_every_reason_that_holds_is_given() -> None:
    decision = decide_alert(context(rolling_average=2.5, report=REGRESSED, errors=50))

    assert decision == AlertDecision(True, decision.reasons)
    assert len(decision.reasons) == 3


@pytest.mark.parametrize(
    "ctx",
    [
        pytest.param(context(), id="fine"),
        pytest.param(context(rolling_average=2.1, report=REGRESSED, errors=30), id="everything-wrong"),
        pytest.param(context(rolling_average=None, rolling_count=0, run_url=""), id="no-data-no-url"),
        pytest.param(
            context(
                rubric_name="r" * 400,
                run_id="x" * 4000,
                report=report(*(comparison(f"criterion_{i}_" + "m" * 80) for i in range(200))),
            ),
            id="huge",
        ),
    ],
)
def test_blocks_validate_with_slack_sdk_models(ctx: AlertContext) -> None:
    text, blocks = build_alert_blocks(ctx, decide_alert(ctx))

    assert text
    for b in blocks:
        Block.parse(b).validate_json()  # type: ignore[union-attr]


def test_message_carries_the_numbers_the_regressions_and_the_run_link() -> None:
    ctx = context(rolling_average=2.8, report=REGRESSED)

    text, blocks = build_alert_blocks(ctx, decide_alert(ctx))

    assert text.startswith("judgeflow: quality drop in helpfulness (v3), 2025-03-08: rolling average 2.80")
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "judgeflow: quality drop in helpfulness (v3), 2025-03-08"},
    }
    rendered = repr(blocks)
    for expected in [
        "2.80 vs threshold 3.00 (n=1400)",
        "196 of 200 extracted (20 from cache)",
        "$1.23",
        "2.0%",
    ]:
        assert expected in rendered
    assert "• accuracy: 4.10 → 3.20 (\u22120.90), p=0.001, n=120 vs 140" in rendered
    assert "tone:" not in rendered
    assert blocks[-1]["elements"][0]["url"] == ctx.run_url


def test_judge_health_alone_gets_its_own_headline() -> None:
    ctx = context(errors=40)

    _, blocks = build_alert_blocks(ctx, decide_alert(ctx))

    assert blocks[0]["text"]["text"] == "judgeflow: judge errors in helpfulness (v3), 2025-03-08"


def test_a_historical_run_says_so_and_names_its_interval() -> None:
    newest = dt.datetime(2025, 3, 20, tzinfo=dt.UTC)
    ctx = dataclasses.replace(context(rolling_average=2.8, report=REGRESSED), historical=True, newest_end=newest)

    decision = decide_alert(ctx)
    text, blocks = build_alert_blocks(ctx, decision)

    assert blocks[0]["text"]["text"] == "judgeflow: quality drop in helpfulness (v3), 2025-03-08 (historical)"
    assert decision.reasons[0] == (
        "historical: not the latest interval (the newest judged so far ends 2025-03-20 00:00 UTC); "
        "on-call is not paged for it"
    )
    assert "(historical)" in text


def test_long_texts_are_cut_to_slack_limits() -> None:
    ctx = context(rubric_name="r" * 400, report=report(*(comparison(f"m{i:03}" + "x" * 60) for i in range(200))))

    text, blocks = build_alert_blocks(ctx, decide_alert(ctx))

    header = blocks[0]["text"]["text"]
    assert len(header) == HEADER_MAX_CHARS and header.endswith("…")
    assert len(text) <= SECTION_MAX_CHARS
    [regressed] = [b for b in blocks if b.get("text", {}).get("text", "").startswith("*Regressed metrics*")]
    body = regressed["text"]["text"]
    assert len(body) <= SECTION_MAX_CHARS
    assert body.splitlines()[1].startswith("• m000")
    assert body.endswith("more")


def test_mrkdwn_control_characters_are_escaped() -> None:
    ctx = context(run_id="manual__<b>&co", report=REGRESSED)

    _, blocks = build_alert_blocks(ctx, decide_alert(ctx))

    assert "manual__&lt;b&gt;&amp;co" in repr(blocks)


@pytest.mark.parametrize(
    ("row", "line"),
    [
        pytest.param(comparison(), "accuracy: 4.10 → 3.20 (\u22120.90), p=0.001, n=120 vs 140", id="example"),
        pytest.param(comparison(p=0.00002), "accuracy: 4.10 → 3.20 (\u22120.90), p<0.001, n=120 vs 140", id="tiny-p"),
        pytest.param(
            comparison("tone", baseline=3.0, current=3.5, p=0.0123, n=(31, 30)),
            "tone: 3.00 → 3.50 (+0.50), p=0.012, n=31 vs 30",
            id="rise",
        ),
        pytest.param(comparison(p=None), "accuracy: 4.10 → 3.20 (\u22120.90), p=n/a, n=120 vs 140", id="no-p"),
    ],
)
def test_regression_line_format(row: MetricComparison, line: str) -> None:
    assert format_regression_line(row) == line


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        pytest.param("short", 10, "short", id="fits"),
        pytest.param("exactly10!", 10, "exactly10!", id="at-limit"),
        pytest.param("a bit too long", 10, "a bit too…", id="cut"),
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_truncate_lines_keeps_whole_lines_and_counts_the_rest() -> None:
    lines = [f"line {i}" for i in range(10)]

    assert truncate_lines("T", lines, limit=40) == "T\nline 0\nline 1\nline 2\n… and 7 more"
    assert truncate_lines("T", lines[:2], limit=40) == "T\nline 0\nline 1"


def test_airflow_run_url_quotes_the_run_id() -> None:
    url = airflow_run_url("http://af:8080/", dag_id="judgeflow_daily", run_id="manual__2025-03-08T00:00:00+00:00")

    assert url == "http://af:8080/dags/judgeflow_daily/runs/manual__2025-03-08T00%3A00%3A00%2B00%3A00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("write to jo.doe+x@example.co.uk today", "write to [email] today", id="email"),
        pytest.param("call +44 20 7946 0958 now", "call [phone] now", id="phone"),
        pytest.param("use sk-ant-abcdefghijklmnop here", "use [key] here", id="prefixed-key"),
        pytest.param("token 0123456789abcdef0123456789abcdef01", "token [key]", id="long-token"),
        pytest.param("order 12345 shipped in 3 days", "order 12345 shipped in 3 days", id="plain-numbers-kept"),
    ],
)
def test_redact_masks_contact_details_and_keys(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_where_it_dropped_names_the_segment_with_a_redacted_worst_example() -> None:
    example = SegmentExample(
        segment="topic=shipping",
        n=40,
        mean=1.8,
        pull=-0.42,
        response_id="977",
        score=1.0,
        rationale="accuracy: told the customer to email refunds@shop.example for a refund",
    )
    ctx = context(report=REGRESSED, where=(example,))
    text, blocks = build_alert_blocks(ctx, decide_alert(ctx))
    where = [b for b in blocks if b.get("type") == "section" and "Where it dropped" in json.dumps(b)]
    assert len(where) == 1
    rendered = json.dumps(where[0])
    assert "topic=shipping" in rendered and "#977" in rendered and "[email]" in rendered
    assert "refunds@shop.example" not in json.dumps(blocks) + text
    for block in blocks:
        Block.parse(block).validate_json()
