"""judgeflow.quality.regression under the null: when nothing changed, how often does a report cry regression?

Every simulated week draws both windows from the same distribution (realistic 1-5 judge scores that
differ by segment and criterion), with five segments, so each report makes 24 tests. Classifying on
raw p-values instead of Benjamini-Hochberg q-values flags about one week in five (measured: 20%).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from judgeflow.quality.regression import compare_windows

UTC = dt.UTC
DAY = dt.timedelta(days=1)
CURRENT_START = dt.datetime(2025, 3, 8, tzinfo=UTC)
LEVELS = np.arange(1, 6, dtype=float)
CRITERIA = ("accuracy", "relevance", "tone")
TOPICS = ("billing", "returns", "shipping", "sizing", "warranty")
TOPIC_SHARE = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
# P(score = 1..5) per criterion; each topic tilts it a little so segments really differ.
PROBS = {
    "accuracy": np.array([0.03, 0.07, 0.20, 0.40, 0.30]),
    "relevance": np.array([0.05, 0.10, 0.25, 0.35, 0.25]),
    "tone": np.array([0.02, 0.03, 0.15, 0.40, 0.40]),
}
WEEKS = 200
PER_WINDOW = 300


def _probs(criterion: str, topic_index: int) -> np.ndarray:
    tilt = PROBS[criterion] * np.linspace(1 + 0.1 * topic_index, 1 - 0.1 * topic_index, 5)
    return tilt / tilt.sum()


def null_week(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 2 * PER_WINDOW
    topic_index = rng.choice(len(TOPICS), n, p=TOPIC_SHARE)
    offsets = np.concatenate([rng.integers(-7 * 86_400, 0, PER_WINDOW), rng.integers(0, 86_400, PER_WINDOW)])
    frame = pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(n)],
            "created_at": CURRENT_START + pd.to_timedelta(offsets, unit="s"),
            "topic": np.asarray(TOPICS)[topic_index],
        }
    )
    for criterion in CRITERIA:
        values = np.empty(n)
        for t in range(len(TOPICS)):
            mask = topic_index == t
            values[mask] = rng.choice(LEVELS, int(mask.sum()), p=_probs(criterion, t))
        frame[criterion] = values
    frame["overall"] = frame[list(CRITERIA)].mean(axis=1)
    return frame


def test_null_weeks_rarely_raise_a_regression() -> None:
    flagged = 0
    for seed in range(WEEKS):
        report = compare_windows(
            null_week(seed),
            criteria=CRITERIA,
            current_start=CURRENT_START,
            current_end=CURRENT_START + DAY,
            baseline_days=7,
            alpha=0.05,
            min_samples=30,
            min_drop=0.25,
            segment_columns=["topic"],
            n_boot=200,
            seed=seed,
        )
        assert len(report.comparisons) == 4 * (1 + len(TOPICS))
        flagged += report.has_regression

    rate = flagged / WEEKS
    print(f"null weeks with any regression: {flagged}/{WEEKS} = {rate:.1%}")
    assert rate <= 0.05
