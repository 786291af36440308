"""judgeflow.quality.regression: windows, statuses and the rolling average, on generated and tiny frames."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from judgeflow.quality.regression import (
    ComparisonStatus,
    RegressionReport,
    _classify,
    _Rule,
    compare_windows,
    rolling_average,
    root_causes,
)
from judgeflow.quality.stats import benjamini_hochberg, bootstrap_mean_difference_ci, mann_whitney

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


def compare(scores: pd.DataFrame, **overrides: Any) -> RegressionReport:
    kwargs: dict[str, Any] = {
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
    ("baseline_n", "current_n", "difference", "q_value", "expected"),
    [
        pytest.param(30, 30, -0.25, 0.049, ComparisonStatus.REGRESSION, id="drop-at-min-drop"),
        pytest.param(30, 30, -0.24, 0.001, ComparisonStatus.STABLE, id="drop-too-small"),
        pytest.param(30, 30, -0.90, 0.05, ComparisonStatus.STABLE, id="not-significant"),
        pytest.param(30, 30, 0.25, 0.01, ComparisonStatus.IMPROVEMENT, id="rise"),
        pytest.param(29, 500, -2.00, 0.0, ComparisonStatus.NOT_ENOUGH_DATA, id="thin-baseline"),
        pytest.param(500, 29, -2.00, 0.0, ComparisonStatus.NOT_ENOUGH_DATA, id="thin-current"),
        pytest.param(30, 30, 0.0, None, ComparisonStatus.STABLE, id="undefined-q"),
    ],
)
def test_classify(
    baseline_n: int, current_n: int, difference: float, q_value: float | None, expected: ComparisonStatus
) -> None:
    status = _classify(
        baseline_n=baseline_n,
        current_n=current_n,
        difference=difference,
        q_value=q_value,
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


# --- confidence intervals, effect sizes, q-values, segments, root causes ---------------------------

TOPICS = ("billing", "returns", "shipping", "sizing", "warranty")


def make_segmented_scores(
    *, seed: int = 11, per_topic: int = 80, drop: Mapping[tuple[str, str], float] | None = None
) -> pd.DataFrame:
    """``per_topic`` responses per topic in each window (baseline spread over 7 days, current in one).

    ``drop`` maps ``(topic, criterion)`` to a shift of today's mean there, before rounding to 1-5.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for window, start, span in (("baseline", CURRENT_START - 7 * DAY, 7 * 86_400), ("current", CURRENT_START, 86_400)):
        n = per_topic * len(TOPICS)
        frame = pd.DataFrame(
            {
                "response_id": [f"{window}-{i}" for i in range(n)],
                "created_at": start + pd.to_timedelta(rng.integers(0, span, n), unit="s"),
                "topic": np.repeat(TOPICS, per_topic),
            }
        )
        for name, mean in MEANS.items():
            shift = np.zeros(n)
            for (topic, criterion), by in (drop or {}).items():
                if window == "current" and criterion == name:
                    shift[frame["topic"].to_numpy() == topic] = by
            frame[name] = np.clip(np.rint(rng.normal(mean + shift, 0.8)), 1, 5)
        frame["overall"] = frame[list(CRITERIA)].mean(axis=1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_ci_contains_the_true_difference_of_a_known_shift() -> None:
    levels = np.arange(1, 6, dtype=float)
    before, after = np.array([0.05, 0.1, 0.2, 0.35, 0.3]), np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    true_difference = float(levels @ after - levels @ before)
    rng = np.random.default_rng(3)
    n = 600
    scores = pd.DataFrame(
        {
            "response_id": range(2 * n),
            "created_at": [CURRENT_START - DAY] * n + [CURRENT_START] * n,
            "overall": np.concatenate([rng.choice(levels, n, p=before), rng.choice(levels, n, p=after)]),
        }
    )

    [overall] = compare(scores, criteria=()).comparisons

    assert overall.ci_low is not None and overall.ci_high is not None
    assert overall.ci_low < true_difference < overall.ci_high
    assert overall.ci_high < 0  # the drop is real, and the interval says so
    assert overall.ci_low < overall.difference < overall.ci_high  # type: ignore[operator]
    assert overall.effect_size is not None and overall.effect_size < 0
    assert overall.status is ComparisonStatus.REGRESSION


def test_effect_size_has_the_sign_of_the_change() -> None:
    report = compare(make_scores(shift={"accuracy": -1.5, "relevance": +1.0}))

    accuracy, relevance = report.get("accuracy"), report.get("relevance")
    assert accuracy is not None and relevance is not None
    assert accuracy.effect_size is not None and -1 <= accuracy.effect_size < -0.3
    assert relevance.effect_size is not None and 0.3 < relevance.effect_size <= 1


def test_q_values_are_never_below_p_values() -> None:
    report = compare(make_segmented_scores(drop={("shipping", "accuracy"): -1.5}), segment_columns=["topic"])

    tested = [c for c in report.comparisons if c.p_value is not None]
    assert len(tested) == 4 * (1 + len(TOPICS))
    assert all(c.q_value is not None and c.q_value >= c.p_value for c in tested)  # type: ignore[operator]


def test_the_bootstrap_is_seeded() -> None:
    scores = make_scores(shift={"accuracy": -0.5})

    assert compare(scores, seed=5) == compare(scores, seed=5)
    assert compare(scores, seed=5).get("accuracy") != compare(scores, seed=6).get("accuracy")


def test_a_drop_in_one_segment_and_criterion_is_found_there_only() -> None:
    scores = make_segmented_scores(drop={("shipping", "accuracy"): -1.5})

    report = compare(scores, segment_columns=["topic"])

    shipping = report.get("accuracy", segment="topic=shipping")
    assert shipping is not None and shipping.status is ComparisonStatus.REGRESSION
    assert (shipping.baseline_n, shipping.current_n) == (80, 80)
    assert shipping.ci_high is not None and shipping.ci_high < 0
    # Overall is the mean of the criteria, so shipping's overall may fall with it; nothing else may.
    flagged = {(c.segment, c.metric) for c in report.segment_regressions}
    assert ("topic=shipping", "accuracy") in flagged
    assert flagged <= {("topic=shipping", "accuracy"), ("topic=shipping", "overall")}
    assert set(report.segment_regressions) <= set(report.regressions)
    assert all(c.metric not in ("relevance", "tone") for c in report.regressions)
    assert report.has_regression
    assert shipping.label == "accuracy [topic=shipping]"


def test_segment_rows_cover_every_value_and_metric_in_order() -> None:
    report = compare(make_segmented_scores(), segment_columns=["topic"])

    segments = [c.segment for c in report.comparisons]
    assert segments[:4] == [None] * 4
    assert segments[4::4] == [f"topic={t}" for t in TOPICS]
    assert [c.metric for c in report.comparisons[:8]] == ["overall", *CRITERIA] * 2
    assert report.get("tone") is report.comparisons[3]
    assert report.segment_regressions == ()


def test_a_thin_segment_is_not_enough_data_and_untested() -> None:
    scores = make_segmented_scores(drop={("shipping", "accuracy"): -2.0})
    thin = (scores["topic"] == "shipping") & (scores["created_at"] >= CURRENT_START)
    scores = scores[~thin | (scores.index.to_series().rank() % 4 == 0)]  # keep ~20 of 80 shipping today

    report = compare(scores, segment_columns=["topic"])

    rows = [c for c in report.comparisons if c.segment == "topic=shipping"]
    assert {c.status for c in rows} == {ComparisonStatus.NOT_ENOUGH_DATA}
    assert all(c.p_value is None and c.q_value is None and c.ci_low is None and c.effect_size is None for c in rows)
    assert report.segment_regressions == ()


def test_old_json_without_the_new_fields_still_loads() -> None:
    new = compare(make_scores(shift={"accuracy": -1.5})).to_json()
    old = {k: v for k, v in new.items() if k not in ("segment_columns", "n_boot", "seed")}
    new_fields = ("ci_low", "ci_high", "effect_size", "q_value", "segment")
    old["comparisons"] = [{k: v for k, v in c.items() if k not in new_fields} for c in new["comparisons"]]

    report = RegressionReport.from_json(old)

    assert [c.metric for c in report.regressions] == ["overall", "accuracy"]
    assert all(c.q_value is None and c.segment is None and c.ci_low is None for c in report.comparisons)
    assert report.segment_columns == ()


def test_segmented_report_round_trips_through_json() -> None:
    report = compare(make_segmented_scores(drop={("shipping", "accuracy"): -1.5}), segment_columns=["topic"])

    assert RegressionReport.from_json(json.loads(json.dumps(report.to_json()))) == report


def test_missing_segment_column_is_refused() -> None:
    with pytest.raises(ValueError, match="channel"):
        compare(make_scores(), segment_columns=["channel"])


def test_root_causes_rank_the_dropping_segment_first() -> None:
    scores = make_segmented_scores(drop={("shipping", "accuracy"): -1.5})

    pulls = root_causes(
        scores, current_start=CURRENT_START, current_end=CURRENT_END, segment_columns=["topic"], metric="accuracy"
    )

    assert pulls[0].segment == "topic=shipping"
    assert pulls[0].pull < 0 and pulls[0].n == 80 and pulls[0].share == pytest.approx(0.2)
    assert sum(p.pull for p in pulls) == pytest.approx(0.0, abs=1e-12)
    assert [p.pull for p in pulls] == sorted(p.pull for p in pulls)
    today = scores[(scores["created_at"] >= CURRENT_START) & (scores["topic"] == "shipping")]
    assert [w.score for w in pulls[0].worst] == sorted(today["accuracy"])[:3]
    assert {w.response_id for w in pulls[0].worst} <= set(today["response_id"])
    assert json.loads(json.dumps(pulls[0].to_json()))["worst"][0]["response_id"] == pulls[0].worst[0].response_id


def test_root_causes_of_an_empty_window_are_none() -> None:
    scores = make_segmented_scores()

    assert (
        root_causes(scores, current_start=CURRENT_END, current_end=CURRENT_END + DAY, segment_columns=["topic"]) == []
    )


# --- the statistics helpers --------------------------------------------------------------------------


def test_cliffs_delta_matches_counting_pairs() -> None:
    rng = np.random.default_rng(0)
    baseline, current = rng.integers(1, 6, 40).astype(float), rng.integers(1, 6, 30).astype(float)

    delta = mann_whitney(baseline, current).cliffs_delta

    pairs = np.sign(current[:, None] - baseline[None, :])
    assert delta == pytest.approx(pairs.mean())


def test_benjamini_hochberg_matches_scipy() -> None:
    from scipy.stats import false_discovery_control

    p = np.random.default_rng(1).uniform(size=25) ** 3

    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p, method="bh"))
    assert benjamini_hochberg(np.array([])).size == 0


def test_bootstrap_ci_covers_about_95_percent() -> None:
    levels = np.arange(1, 6, dtype=float)
    probs = np.array([0.05, 0.1, 0.25, 0.35, 0.25])
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(300):
        ci = bootstrap_mean_difference_ci(
            rng.choice(levels, 200, p=probs), rng.choice(levels, 150, p=probs), rng=rng, n_boot=400
        )
        assert ci is not None
        covered += ci[0] <= 0.0 <= ci[1]

    assert 0.90 <= covered / 300 <= 0.99


def test_a_stored_comparison_reads_back_with_the_keys_stored_beside_it() -> None:
    """``judge_comparisons.details`` holds the comparison and the run's sample rate; the view reads it back."""
    from judgeflow.quality.regression import ComparisonStatus, MetricComparison

    row = MetricComparison("accuracy", 10, 3.0, 10, 2.0, -1.0, 0.01, ComparisonStatus.REGRESSION, segment="topic=a")
    assert MetricComparison.from_json({**row.to_json(), "sample_rate": 0.5}) == row
