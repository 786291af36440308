"""Noise, judge-against-people and length-bias figures on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from judgeflow.quality.judge_quality import judge_vs_people, length_bias, noise_summary


def test_identical_asks_have_no_spread_and_full_kappa() -> None:
    asks = [({"a": s, "b": 6 - s}, {"a": s, "b": 6 - s}) for s in (1, 2, 3, 4, 5) * 4]
    summary = noise_summary(asks, scale_min=1, scale_max=5, unstable_spread=2, resamples=200)
    assert summary.responses == 20 and summary.pairs == 40
    assert summary.kappa.value == pytest.approx(1.0) and summary.mean_abs_spread == 0.0 and summary.unstable == 0


def test_spread_unstable_and_failed_second_asks() -> None:
    asks = [
        ({"a": 3, "b": 3}, {"a": 4, "b": 3}),  # spread 1
        ({"a": 1, "b": 5}, {"a": 3, "b": 5}),  # spread 2: unstable
        ({"a": 2, "b": 2}, {}),  # the second ask failed: left out
        ({"a": 5, "b": 1}, {"a": 5, "b": 1}),
    ]
    summary = noise_summary(asks, scale_min=1, scale_max=5, unstable_spread=2, resamples=200)
    assert (summary.responses, summary.pairs, summary.unstable) == (3, 6, 1)
    assert summary.mean_abs_spread == pytest.approx(3 / 6)
    assert summary.kappa.value is not None and 0 < summary.kappa.value < 1


def test_judge_vs_people_agrees_with_itself() -> None:
    people = [1, 2, 3, 4, 5, 3, 2, 4]
    result = judge_vs_people(people, people, scale_min=1, scale_max=5, resamples=200)
    assert result.kappa.value == pytest.approx(1.0) and result.spearman.value == pytest.approx(1.0)


def test_length_controlled_mean_undoes_a_verbosity_bonus() -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(50, 3000, size=2000)
    scores = 2.0 + 0.5 * np.log2(lengths + 1.0) + rng.normal(0, 0.3, size=2000)
    bias = length_bias(lengths.tolist(), scores.tolist(), reference_chars=400)
    assert bias.slope_per_doubling == pytest.approx(0.5, abs=0.03)
    assert bias.spearman is not None and bias.spearman > 0.5
    assert bias.controlled_mean == pytest.approx(2.0 + 0.5 * np.log2(401), abs=0.05)
    assert bias.raw_mean is not None and bias.raw_mean > bias.controlled_mean  # longer than 400 on average


def test_length_bias_undefined_on_one_length() -> None:
    bias = length_bias([100, 100, 100], [1, 2, 3])
    assert bias.slope_per_doubling is None and bias.controlled_mean is None and bias.raw_mean == 2.0
