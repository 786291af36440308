"""The emulator's noise knob: how often an ask moves a score, by how much, and that 0 changes nothing."""

from __future__ import annotations

import math
import random

import pytest

from judgeflow.errors import ConfigError
from judgeflow_devkit.emulator import EmulatorConfig
from judgeflow_devkit.emulator.scoring import emulated_scores, with_noise

CRITERIA = [f"c{i}" for i in range(8)]


def _wilson(k: int, n: int, z: float = 3.29) -> tuple[float, float]:
    """A 99.9% Wilson interval for k successes in n: wide enough that a seeded run never flakes."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("rate", [pytest.param(0.1, id="10%"), pytest.param(0.3, id="30%")])
def test_share_of_moved_scores_is_the_knob(rate: float) -> None:
    rng = random.Random(7)
    moved = total = 0
    for i in range(3000):
        truth = emulated_scores(f"answer number {i}", CRITERIA, 1, 5)
        noisy = with_noise(truth, 1, 5, rate=rate, rng=rng)
        assert all(abs(noisy[c] - truth[c]) <= 1 and 1 <= noisy[c] <= 5 for c in CRITERIA)
        moved += sum(noisy[c] != truth[c] for c in CRITERIA)
        total += len(CRITERIA)
    low, high = _wilson(moved, total)
    assert low <= rate <= high, (moved / total, low, high)


def test_ends_of_the_scale_move_inwards() -> None:
    rng = random.Random(1)
    assert {with_noise({"a": 1}, 1, 5, rate=1.0, rng=rng)["a"] for _ in range(50)} == {2}
    assert {with_noise({"a": 5}, 1, 5, rate=1.0, rng=rng)["a"] for _ in range(50)} == {4}
    assert {with_noise({"a": 3}, 1, 5, rate=1.0, rng=rng)["a"] for _ in range(200)} == {2, 4}


def test_no_noise_is_the_exact_score() -> None:
    truth = emulated_scores("a fine answer", CRITERIA, 1, 5)
    assert with_noise(truth, 1, 5, rate=0.0, rng=random.Random(0)) == truth


def test_knob_is_a_probability() -> None:
    with pytest.raises(ConfigError, match="score_noise"):
        EmulatorConfig(score_noise=1.5)
