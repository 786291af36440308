"""Agreement statistics on values worked out by hand, and what happens when they are undefined."""

from __future__ import annotations

import pytest

from judgeflow.quality.agreement import (
    agreement,
    length_correlation,
    mean_absolute_error,
    spearman,
    weighted_kappa,
)


@pytest.mark.parametrize(
    ("human", "judge", "scale", "expected"),
    [
        pytest.param([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], (1, 5), 1.0, id="perfect"),
        # two neighbours swapped: O = 2/16/5 = 0.025, E = 100/16/25 = 0.25 -> 1 - 0.1
        pytest.param([1, 2, 3, 4, 5], [1, 2, 3, 5, 4], (1, 5), 0.9, id="one-swap"),
        # joint distribution equals the product of the marginals: no agreement beyond chance
        pytest.param([1, 1, 2, 2], [1, 2, 1, 2], (1, 2), 0.0, id="chance"),
        pytest.param([1, 2], [2, 1], (1, 2), -1.0, id="opposite"),
        # an unused scale step still counts for the weights: (1..3 on 1..4) O = 1/9/3, E = 8/9/9
        pytest.param([1, 2, 3], [1, 3, 2], (1, 4), 1 - (2 / 9 / 3) / ((12 / 9) / 9), id="unused-step"),
    ],
)
def test_quadratic_weighted_kappa(human: list[int], judge: list[int], scale: tuple[int, int], expected: float) -> None:
    assert weighted_kappa(human, judge, scale_min=scale[0], scale_max=scale[1]) == pytest.approx(expected)


def test_spearman_and_mae_on_known_values() -> None:
    # rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 120
    assert spearman([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]) == pytest.approx(0.9)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert mean_absolute_error([1, 2, 3, 4, 5], [1, 2, 3, 5, 4]) == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("human", "judge", "reason"),
    [
        pytest.param([5, 5, 5, 5], [4, 5, 3, 5], "human scores are all 5", id="humans-constant"),
        pytest.param([1, 3, 5, 2], [3, 3, 3, 3], "judge scores are all 3", id="judge-constant"),
        pytest.param([4], [4], "1 item(s)", id="one-item"),
    ],
)
def test_undefined_figures_are_none_with_the_reason(human: list[int], judge: list[int], reason: str) -> None:
    result = agreement(human, judge, scale_min=1, scale_max=5, resamples=200)

    assert result.kappa.value is None and result.kappa.low is None and reason in result.kappa.reason
    assert result.spearman.value is None and reason in result.spearman.reason
    assert result.mae.value is not None, "MAE is defined whenever there are items"


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded() -> None:
    human = [1, 2, 2, 3, 4, 4, 5, 5, 1, 3, 4, 5, 2, 2, 5, 4, 3, 1, 5, 4]
    judge = [1, 2, 3, 3, 4, 5, 5, 4, 2, 3, 3, 5, 1, 2, 4, 4, 2, 1, 5, 5]
    first = agreement(human, judge, scale_min=1, scale_max=5, resamples=500, seed=3)
    again = agreement(human, judge, scale_min=1, scale_max=5, resamples=500, seed=3)
    other = agreement(human, judge, scale_min=1, scale_max=5, resamples=500, seed=4)

    assert first == again
    assert first.kappa != other.kappa
    for estimate in (first.kappa, first.spearman, first.mae):
        assert estimate.value is not None and estimate.low is not None and estimate.high is not None
        assert estimate.low <= estimate.value <= estimate.high
        assert estimate.high - estimate.low > 0.05, "twenty items leave real uncertainty"
    assert first.kappa.value == pytest.approx(weighted_kappa(human, judge, scale_min=1, scale_max=5))


def test_length_correlation() -> None:
    assert length_correlation([10, 20, 30, 40], [1.0, 2.0, 3.0, 4.5]) == pytest.approx(1.0)
    assert length_correlation([10, 20, 30], [3.0, 3.0, 3.0]) is None
