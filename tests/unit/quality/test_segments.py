"""Segments with power: a small segment pools its last days, says so, and states what it could detect.

Five topics of twelve responses a day, as the issue describes (60 a day): with ``min_samples`` 30 no
topic is ever compared on one day's scores; pooled, each is compared on its last three days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from judgeflow.quality.regression import ComparisonStatus, RegressionReport, compare_windows
from judgeflow.quality.root_cause import DropKind
from judgeflow.quality.segments import Span, pooled_days
from judgeflow.quality.stats import minimum_detectable_effect

UTC = dt.UTC
DAY = dt.timedelta(days=1)
TODAY = dt.datetime(2026, 11, 20, tzinfo=UTC)
TOPICS = ("account", "billing", "product", "returns", "shipping")


def frame(
    *,
    per_topic_per_day: int = 12,
    days: int = 12,
    drop: Mapping[str, float] | None = None,
    drop_days: int = 3,
    seed: int = 3,
) -> pd.DataFrame:
    """``days`` days up to and including TODAY; ``drop`` lowers a topic's scores on its last ``drop_days`` days."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for d in range(days - 1, -1, -1):
        start = TODAY - d * DAY
        for topic in TOPICS:
            shift = (drop or {}).get(topic, 0.0) if d < drop_days else 0.0
            for _ in range(per_topic_per_day):
                score = float(np.clip(np.rint(rng.normal(3.8 + shift, 0.8)), 1, 5))
                rows.append(
                    {
                        "response_id": f"r{len(rows)}",
                        "created_at": start + dt.timedelta(seconds=int(rng.integers(0, 86_400))),
                        "topic": topic,
                        "overall": score,
                        "accuracy": score,
                    }
                )
    return pd.DataFrame(rows)


def compare(scores: pd.DataFrame, **overrides: Any) -> RegressionReport:
    kwargs: dict[str, Any] = {
        "criteria": ("accuracy",),
        "current_start": TODAY,
        "current_end": TODAY + DAY,
        "baseline_days": 7,
        "alpha": 0.05,
        "min_samples": 30,
        "min_drop": 0.25,
        "segment_columns": ("topic",),
        "max_pool_days": 7,
        **overrides,
    }
    return compare_windows(scores, **kwargs)


def test_without_pooling_every_topic_of_twelve_a_day_lacks_data() -> None:
    report = compare(frame(), max_pool_days=1)

    segment_rows = [c for c in report.comparisons if c.segment is not None]
    assert len(segment_rows) == 10
    assert {c.status for c in segment_rows} == {ComparisonStatus.NOT_ENOUGH_DATA}
    assert {c.days_pooled for c in segment_rows} == {1}


def test_a_topic_pools_three_days_to_reach_thirty_and_is_compared() -> None:
    report = compare(frame())

    row = report.get("overall", segment="topic=shipping")
    assert row is not None
    assert row.days_pooled == 3 and row.current_n == 36
    assert row.baseline_n == 7 * 12, "the baseline is the seven days before the pooled days"
    assert row.status is ComparisonStatus.STABLE and row.mde is not None and 0.3 < row.mde < 0.8
    everyone = report.get("overall")
    assert everyone is not None and everyone.days_pooled == 1 and everyone.current_n == 60


def test_pooling_stops_at_the_configured_days() -> None:
    report = compare(frame(per_topic_per_day=2), max_pool_days=4)

    row = report.get("overall", segment="topic=billing")
    assert row is not None and row.days_pooled == 4 and row.current_n == 8
    assert row.status is ComparisonStatus.NOT_ENOUGH_DATA and row.mde is None


def test_pooled_days_counts_whole_days_back() -> None:
    scores = frame(per_topic_per_day=10)
    shipping = scores[scores["topic"] == "shipping"]
    span = Span(TODAY, TODAY + DAY, 7)

    assert pooled_days(shipping, span, min_samples=30, max_pool_days=7) == 3
    assert pooled_days(shipping, span, min_samples=10, max_pool_days=7) == 1
    assert pooled_days(shipping, span, min_samples=31, max_pool_days=7) == 4


def test_a_local_drop_is_found_in_the_pooled_segment_and_called_local() -> None:
    report = compare(frame(drop={"shipping": -2.5}))

    row = report.get("overall", segment="topic=shipping")
    assert row is not None and row.status is ComparisonStatus.REGRESSION and row.days_pooled == 3
    cause = report.root_cause
    assert cause is not None and cause.kind is DropKind.LOCAL and cause.column == "topic"
    assert cause.shares[0].segment == "topic=shipping" and cause.shares[0].decline_share > 0.8
    assert cause.text.startswith("local: topic=shipping carries")
    assert "over 3 days" in cause.text


def test_a_drop_in_every_topic_is_called_global() -> None:
    report = compare(frame(drop=dict.fromkeys(TOPICS, -1.2)))

    cause = report.root_cause
    assert cause is not None and cause.kind is DropKind.GLOBAL, cause
    assert cause.text.startswith("global: every topic segment dropped alike")
    assert all(s.difference < -0.6 for s in cause.shares)


def test_no_drop_has_nothing_to_explain_and_no_segments_nothing_to_tell_apart() -> None:
    assert compare(frame()).root_cause is not None
    assert compare(frame()).root_cause.kind is DropKind.NONE  # type: ignore[union-attr]
    unsegmented = compare(frame(drop=dict.fromkeys(TOPICS, -1.2)), segment_columns=())
    assert unsegmented.root_cause is not None and unsegmented.root_cause.kind is DropKind.UNKNOWN


def test_root_cause_and_pooling_survive_json() -> None:
    report = compare(frame(drop={"shipping": -2.5}))

    again = RegressionReport.from_json(report.to_json())
    assert again == report
    assert again.root_cause is not None and again.root_cause.text == report.root_cause.text  # type: ignore[union-attr]


def test_a_stored_row_with_extra_keys_reads_back() -> None:
    row = compare(frame()).comparisons[0].to_json()
    stored = {**row, "sample_rate": 0.5, "root_cause": {"kind": "none"}}

    assert type(compare(frame()).comparisons[0]).from_json(stored).to_json() == row


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        pytest.param(36, 0.38, id="n36"),
        pytest.param(144, 0.23, id="n144"),
        pytest.param(1000, 0.16, id="n1000"),
    ],
)
def test_minimum_detectable_effect_shrinks_with_n(n: int, expected: float) -> None:
    baseline = np.tile([3.0, 4.0, 5.0, 3.0, 4.0], 40)  # 200 values, sd 0.75
    current = np.resize(baseline, n)
    # (1.96 + 0.84) * 0.75 * sqrt(1/200 + 1/n)
    expected_exact = 2.8016 * float(np.std(baseline, ddof=1)) * float(np.sqrt(1 / 200 + 1 / n))

    mde = minimum_detectable_effect(baseline, current, alpha=0.05, power=0.8)
    assert mde == pytest.approx(expected_exact, rel=1e-3)
    assert mde == pytest.approx(expected, abs=0.02)


def test_minimum_detectable_effect_needs_two_values_per_window() -> None:
    assert minimum_detectable_effect(np.array([3.0]), np.array([3.0, 4.0]), alpha=0.05, power=0.8) is None
