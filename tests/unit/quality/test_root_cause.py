"""locate_drop on hand-made rows: traffic shares from pooled rows, the global rule, the text."""

from __future__ import annotations

from typing import Any

import pytest

from judgeflow.quality.regression import ComparisonStatus, MetricComparison
from judgeflow.quality.root_cause import DropKind, RootCause, locate_drop


def row(
    segment: str | None,
    difference: float,
    *,
    n: int = 60,
    days: int = 1,
    metric: str = "overall",
    status: ComparisonStatus = ComparisonStatus.STABLE,
) -> MetricComparison:
    return MetricComparison(
        metric=metric,
        baseline_n=400,
        baseline_mean=4.0,
        current_n=n,
        current_mean=4.0 + difference,
        difference=difference,
        p_value=0.5,
        status=status,
        segment=segment,
        days_pooled=days,
    )


def locate(rows: list[MetricComparison], **kwargs: Any) -> RootCause:
    return locate_drop(rows, segment_columns=kwargs.pop("columns", ("topic",)), min_drop=0.25, **kwargs)


def test_traffic_share_counts_responses_per_day_of_a_pooled_row() -> None:
    # shipping: 30 responses over 3 days = 10 a day; billing 40 in one day: shipping has 20% of the traffic
    cause = locate(
        [
            row(None, -0.5),
            row("topic=shipping", -2.5, n=30, days=3, status=ComparisonStatus.REGRESSION),
            row("topic=billing", 0.0, n=40),
        ]
    )
    assert cause.kind is DropKind.LOCAL
    shipping = cause.shares[0]
    assert shipping.segment == "topic=shipping" and shipping.traffic_share == pytest.approx(0.2)
    assert shipping.decline_share == pytest.approx(1.0)
    assert cause.text == ("local: topic=shipping carries 100% of the decline (\u22122.50 over 3 days, 20% of traffic)")


def test_every_segment_at_least_half_the_average_drop_is_global() -> None:
    rows = [row(None, -1.0), row("topic=a", -0.8), row("topic=b", -1.2), row("topic=c", -1.0)]
    assert locate(rows).kind is DropKind.GLOBAL
    rows[1] = row("topic=a", -0.3)  # a dropped by less than half of the average -0.83
    assert locate(rows).kind is DropKind.LOCAL


def test_a_local_column_wins_over_a_global_one() -> None:
    rows = [
        row(None, -0.5),
        row("topic=shipping", -2.5, n=12, status=ComparisonStatus.REGRESSION),
        row("topic=billing", 0.0, n=48),
        row("locale=en", -0.5, n=30),
        row("locale=fr", -0.5, n=30),
    ]
    cause = locate(rows, columns=("topic", "locale"))
    assert cause.kind is DropKind.LOCAL and cause.column == "topic"


def test_a_criterion_only_drop_is_read_on_that_criterion() -> None:
    rows = [
        row(None, -0.05),
        row(None, -0.6, metric="tone", status=ComparisonStatus.REGRESSION),
        row("topic=a", 0.0),
        row("topic=b", 0.0),
        row("topic=a", -1.2, metric="tone"),
        row("topic=b", 0.0, metric="tone"),
    ]
    cause = locate(rows)
    assert cause.metric == "tone" and cause.kind is DropKind.LOCAL and cause.shares[0].segment == "topic=a"


def test_nothing_fell_is_none() -> None:
    assert locate([row(None, -0.1), row("topic=a", -0.1)]).kind is DropKind.NONE


def test_only_sure_drops_share_the_decline_when_there_are_any() -> None:
    import dataclasses

    sure = dataclasses.replace(
        row("topic=shipping", -0.9, n=30, days=3, status=ComparisonStatus.REGRESSION), ci_low=-1.3, ci_high=-0.5
    )
    noisy = dataclasses.replace(row("topic=billing", -0.15, n=30), ci_low=-0.5, ci_high=0.2)
    cause = locate([row(None, -0.1), sure, noisy, row("topic=account", 0.2, n=30)])

    assert cause.kind is DropKind.LOCAL
    shares = {s.segment: s.decline_share for s in cause.shares}
    assert shares == {"topic=shipping": 1.0, "topic=billing": 0.0, "topic=account": 0.0}
    assert "topic=billing" not in cause.text
