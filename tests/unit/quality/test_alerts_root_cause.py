"""The Slack message where segments appear: pooled days, the smallest detectable drop, the root cause.

Kept beside ``test_alerts.py`` (the message as a whole) so each file stays about one thing.
"""

from __future__ import annotations

import dataclasses
import json

from judgeflow.quality.alerts import AlertContext, build_alert_blocks, decide_alert, format_regression_line
from judgeflow.quality.regression import RegressionReport
from judgeflow.quality.root_cause import DropKind
from tests.unit.quality.test_alerts import context as alerts_context
from tests.unit.quality.test_segments import TOPICS, compare, frame


def context(report: RegressionReport) -> AlertContext:
    """The message's other fields as ``test_alerts`` has them; the rolling average stays above its threshold."""
    return alerts_context(report=report, rolling_average=3.6, threshold=1.0)


def rendered(ctx: AlertContext) -> tuple[str, list[dict[str, object]]]:
    return build_alert_blocks(ctx, decide_alert(ctx))


def test_a_pooled_segment_line_says_its_days_and_what_it_could_detect() -> None:
    report = compare(frame(drop={"shipping": -2.5}))
    row = report.get("overall", segment="topic=shipping")
    assert row is not None and row.mde is not None

    line = format_regression_line(row)
    assert line.startswith("overall [topic=shipping]: ")
    assert line.endswith(f", n=84 vs 36, over 3 days, detects ≥{row.mde:.2f}")


def test_the_message_says_the_drop_is_local_and_who_carries_it() -> None:
    _, blocks = rendered(context(compare(frame(drop={"shipping": -2.5}))))

    cause = [b for b in blocks if "*Root cause*" in json.dumps(b, ensure_ascii=False)]
    assert len(cause) == 1
    text = json.dumps(cause[0], ensure_ascii=False)
    assert "local: topic=shipping carries" in text and "of the decline" in text


def test_a_global_drop_is_called_global() -> None:
    _, blocks = rendered(context(compare(frame(drop=dict.fromkeys(TOPICS, -1.2)))))

    assert "global: every topic segment dropped alike" in json.dumps(blocks, ensure_ascii=False)


def test_no_root_cause_section_without_a_regression() -> None:
    report = compare(frame())
    assert report.root_cause is not None and report.root_cause.kind is DropKind.NONE
    _, blocks = rendered(context(report))
    assert "Root cause" not in json.dumps(blocks)


def test_segment_values_are_redacted_in_the_message() -> None:
    report = compare(frame(drop={"shipping": -2.5}))
    leaky = tuple(
        dataclasses.replace(c, segment="topic=bob@example.com") if c.segment == "topic=shipping" else c
        for c in report.comparisons
    )
    line = format_regression_line(next(c for c in leaky if c.segment and "bob" in c.segment))
    assert "bob@example.com" not in line and "[email]" in line
