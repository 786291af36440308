"""judgeflow.regression: windows, statuses and the rolling average, on generated and tiny frames."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from judgeflow.regression import (
    ComparisonStatus,
    RegressionReport,
    _classify,
    _Rule,
    compare_windows,
    rolling_average,
)

UTC = dt.UTC
DAY = dt.timedelta(days=1)
CURRENT_START = dt.datetime(2025, 3, 8, tzinfo=UTC)
CURRENT_END = CURRENT_START + DAY
CRITERIA = ("accuracy", "relevance", "tone")
MEANS = {"accuracy": 4.1, "relevance": 3.8, "tone": 4.3}
RULE = {"alpha": 0.05, "min_samples": 30, "min_drop": 0.25}


def make_scores(
    *,
    seed: int = 7,
    baseline_per_day: int = 40,
    current_n: int = 120,
    baseline_days: int = 7,
    shift: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Integer 1-5 criterion scores (as a judge gives), ``overall`` their mean; ``shift`` moves today's."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []

    def add(day_start: dt.datetime, n: int, day_shift: Mapping[str, float]) -> None:
        for _ in range(n):
            row: dict[str, object] = {
                "response_id": f"r{len(rows)}",
                "created_at": day_start + dt.timedelta(seconds=int(rng.integers(0, 86_400))),
                "topic": str(rng.choice(["billing", "shipping"])),
            }
            for name, mean in MEANS.items():
                row[name] = float(np.clip(np.rint(rng.normal(mean + day_shift.get(name, 0.0), 0.8)), 1, 5))
            row["overall"] = float(np.mean([row[c] for c in CRITERIA]))
            rows.append(row)

    for d in range(baseline_days, 0, -1):
        add(CURRENT_START - d * DAY, baseline_per_day, {})
    add(CURRENT_START, current_n, shift or {})
    return pd.DataFrame(rows)


def compare(scores: pd.DataFrame, **overrides: object) -> RegressionReport:
    kwargs: dict[str, object] = {
        "criteria": CRITERIA,
        "current_start": CURRENT_START,
        "current_end": CURRENT_END,
        "baseline_days": 7,
        **RULE,
        **overrides,
    }
    return compare_windows(scores, **kwargs)


def statuses(report: RegressionReport) -> dict[str, ComparisonStatus]:
    return {c.metric: c.status for c in report.comparisons}


def test_a_drop_in_one_criterion_is_a_regression_there_and_overall_only() -> None:
    report = compare(make_scores(shift={"accuracy": -1.5}))

    assert statuses(report) == {
        "overall": ComparisonStatus.REGRESSION,
        "accuracy": ComparisonStatus.REGRESSION,
        "relevance": ComparisonStatus.STABLE,
        "tone": ComparisonStatus.STABLE,
    }
    assert report.has_regression
    assert [c.metric for c in report.regressions] == ["overall", "accuracy"]
    accuracy = report.get("accuracy")
    assert accuracy is not None
    assert (accuracy.baseline_n, accuracy.current_n) == (280, 120)
    assert accuracy.difference is not None and accuracy.difference < -1.0
    assert accuracy.p_value is not None and accuracy.p_value < 1e-6


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_drop_is_no_regression(seed: int) -> None:
    report = compare(make_scores(seed=seed))

    assert not report.has_regression
    assert report.regressions == ()
    assert all(s is ComparisonStatus.STABLE for s in statuses(report).values())


def test_a_rise_is_an_improvement_not_a_regression() -> None:
    report = compare(make_scores(shift={"relevance": +1.0}))

    assert statuses(report)["relevance"] is ComparisonStatus.IMPROVEMENT
    assert not report.has_regression


@pytest.mark.parametrize(
    ("baseline_per_day", "current_n"),
    [
        pytest.param(2, 120, id="thin-baseline"),
        pytest.param(40, 10, id="thin-current"),
        pytest.param(40, 0, id="empty-current"),
    ],
)
def test_too_little_data_is_not_enough_data(baseline_per_day: int, current_n: int) -> None:
    report = compare(make_scores(baseline_per_day=baseline_per_day, current_n=current_n, shift={"accuracy": -2}))

    assert set(statuses(report).values()) == {ComparisonStatus.NOT_ENOUGH_DATA}
    assert not report.has_regression


def test_missing_criterion_values_are_left_out_of_that_criterion_only() -> None:
    scores = make_scores()
    today = scores["created_at"] >= CURRENT_START
    scores.loc[today[today].index[:100], "tone"] = np.nan

    report = compare(scores)

    tone, overall = report.get("tone"), report.get("overall")
    assert tone is not None and overall is not None
    assert (tone.current_n, overall.current_n) == (20, 120)
    assert tone.status is ComparisonStatus.NOT_ENOUGH_DATA


def test_windows_are_half_open() -> None:
    at = [
        CURRENT_START - 2 * DAY - dt.timedelta(microseconds=1),  # before the baseline
        CURRENT_START - 2 * DAY,  # first baseline moment
        CURRENT_START - dt.timedelta(microseconds=1),  # last baseline moment
        CURRENT_START,  # first current moment
        CURRENT_END - dt.timedelta(microseconds=1),  # last current moment
        CURRENT_END,  # after the current window
    ]
    scores = pd.DataFrame({"response_id": range(6), "created_at": at, "overall": [1.0, 2, 3, 4, 5, 1]})

    report = compare(scores, criteria=(), baseline_days=2, min_samples=1)

    [overall] = report.comparisons
    assert (overall.baseline_n, overall.baseline_mean) == (2, 2.5)
    assert (overall.current_n, overall.current_mean) == (2, 4.5)
    assert overall.difference == pytest.approx(2.0)
    assert report.baseline_start == CURRENT_START - 2 * DAY


@pytest.mark.parametrize(
    ("baseline_n", "current_n", "difference", "p_value", "expected"),
    [
        pytest.param(30, 30, -0.25, 0.049, ComparisonStatus.REGRESSION, id="drop-at-min-drop"),
        pytest.param(30, 30, -0.24, 0.001, ComparisonStatus.STABLE, id="drop-too-small"),
        pytest.param(30, 30, -0.90, 0.05, ComparisonStatus.STABLE, id="not-significant"),
        pytest.param(30, 30, 0.25, 0.01, ComparisonStatus.IMPROVEMENT, id="rise"),
        pytest.param(29, 500, -2.00, 0.0, ComparisonStatus.NOT_ENOUGH_DATA, id="thin-baseline"),
        pytest.param(500, 29, -2.00, 0.0, ComparisonStatus.NOT_ENOUGH_DATA, id="thin-current"),
        pytest.param(30, 30, 0.0, None, ComparisonStatus.STABLE, id="undefined-p"),
    ],
)
def test_classify(
    baseline_n: int, current_n: int, difference: float, p_value: float | None, expected: ComparisonStatus
) -> None:
    status = _classify(
        baseline_n=baseline_n,
        current_n=current_n,
        difference=difference,
        p_value=p_value,
        rule=_Rule(alpha=0.05, min_samples=30, min_drop=0.25),
    )

    assert status is expected


def test_status_predicates() -> None:
    assert ComparisonStatus.REGRESSION.is_regression
    assert ComparisonStatus.IMPROVEMENT.is_improvement
    assert not ComparisonStatus.NOT_ENOUGH_DATA.has_enough_data
    assert ComparisonStatus.STABLE.has_enough_data
    assert ComparisonStatus("stable") == "stable"


def test_report_round_trips_through_json() -> None:
    report = compare(make_scores(shift={"accuracy": -1.5}))

    data = json.loads(json.dumps(report.to_json()))

    assert RegressionReport.from_json(data) == report
    assert data["comparisons"][1]["status"] == "regression"
    assert "response_id" not in json.dumps(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"current_start": CURRENT_START.replace(tzinfo=None)}, "timezone-aware", id="naive"),
        pytest.param({"current_end": CURRENT_START}, "must be after", id="empty-window"),
        pytest.param({"criteria": ("accuracy", "depth")}, "depth", id="missing-column"),
        pytest.param({"baseline_days": 0}, "baseline_days", id="no-baseline"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare(make_scores(), **kwargs)


def test_naive_created_at_is_refused() -> None:
    scores = make_scores()
    scores["created_at"] = scores["created_at"].dt.tz_localize(None)

    with pytest.raises(ValueError, match="created_at must be timezone-aware"):
        compare(scores)


END = dt.datetime(2025, 3, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        pytest.param(7, (3.0, 3), id="week"),
        pytest.param(2, (2.5, 2), id="two-days"),
        pytest.param(10, (2.75, 4), id="ten-days"),
    ],
)
def test_rolling_average(days: int, expected: tuple[float, int]) -> None:
    scores = pd.DataFrame(
        {
            "response_id": range(5),
            "created_at": [END - 8 * DAY, END - 3 * DAY, END - DAY, END - dt.timedelta(microseconds=1), END],
            "overall": [2.0, 4.0, 3.0, 2.0, 1.0],
        }
    )

    assert rolling_average(scores, end=END, days=days) == expected


def test_rolling_average_of_nothing_is_none() -> None:
    empty = pd.DataFrame({"response_id": [], "created_at": pd.to_datetime([], utc=True), "overall": []})

    assert rolling_average(empty, end=END, days=7) == (None, 0)
