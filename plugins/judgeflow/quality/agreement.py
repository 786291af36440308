"""Agreement between a judge and human raters on one criterion, each figure with a bootstrap interval.

- **Quadratic-weighted Cohen's kappa** on the rubric's scale: agreement beyond chance, where a
  disagreement costs the square of its distance (1 vs 5 is sixteen times worse than 4 vs 5). It is
  computed here in numpy rather than with scikit-learn, which would be a large dependency for
  fifteen lines: ``kappa = 1 - sum(W * O) / sum(W * E)`` with ``W[i, j] = (i - j)^2 / (k - 1)^2``,
  ``O`` the observed joint distribution of (human, judge) scores and ``E`` the outer product of
  the two marginals (Cohen 1968). With every scale step as a category, a score the raters never
  used still counts for the weights, as scikit-learn's does when given ``labels``.
- **Spearman's rank correlation** (scipy): do the judge and the humans order the items alike.
- **Mean absolute error**, in scale points: how far apart the scores are.

Each comes with a percentile bootstrap 95% interval over items (seeded, so the same data gives the
same interval). A figure that is undefined, because either side's scores are all the same (kappa's
chance correction and a rank correlation then mean nothing), is ``None`` with the reason, never a
made-up number; bootstrap resamples where it is undefined are left out of the interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

DEFAULT_RESAMPLES = 1000
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class Estimate:
    """A figure with its bootstrap interval; ``value`` is ``None`` when undefined, with ``reason``."""

    value: float | None
    low: float | None = None
    high: float | None = None
    reason: str = ""

    @classmethod
    def undefined(cls, reason: str) -> Estimate:
        return cls(None, None, None, reason)


@dataclass(frozen=True, slots=True)
class Agreement:
    """Judge against humans on one criterion, over ``n`` items."""

    n: int
    kappa: Estimate
    spearman: Estimate
    mae: Estimate


def weighted_kappa(human: Sequence[int], judge: Sequence[int], *, scale_min: int, scale_max: int) -> float | None:
    """Quadratic-weighted Cohen's kappa on the scale ``scale_min..scale_max``; ``None`` if undefined."""
    a, b = _as_arrays(human, judge)
    if _reason_undefined(a, b):
        return None
    k = scale_max - scale_min + 1
    observed = np.zeros((k, k))
    np.add.at(observed, (a - scale_min, b - scale_min), 1.0)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    steps = np.arange(k)
    weights = (steps[:, None] - steps[None, :]) ** 2 / (k - 1) ** 2
    chance = float((weights * expected).sum())
    return 1.0 - float((weights * observed).sum()) / chance


def spearman(human: Sequence[int], judge: Sequence[int]) -> float | None:
    """Spearman's rho (ties get average ranks); ``None`` if either side is constant."""
    a, b = _as_arrays(human, judge)
    if _reason_undefined(a, b):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(a, b).statistic)
    return None if math.isnan(rho) else rho


def mean_absolute_error(human: Sequence[int], judge: Sequence[int]) -> float | None:
    a, b = _as_arrays(human, judge)
    return float(np.abs(a - b).mean()) if len(a) else None


def agreement(
    human: Sequence[int],
    judge: Sequence[int],
    *,
    scale_min: int,
    scale_max: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Agreement:
    """All three figures for one criterion, each with its interval from the same resampled item sets."""
    a, b = _as_arrays(human, judge)
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(a), size=(resamples, len(a))) if len(a) else np.zeros((0, 0), dtype=int)

    def kappa_of(x: np.ndarray, y: np.ndarray) -> float | None:
        return weighted_kappa(x, y, scale_min=scale_min, scale_max=scale_max)  # type: ignore[arg-type]

    return Agreement(
        n=len(a),
        kappa=_estimate(a, b, kappa_of, samples),
        spearman=_estimate(a, b, spearman, samples),  # type: ignore[arg-type]
        mae=_estimate(a, b, mean_absolute_error, samples),  # type: ignore[arg-type]
    )


def _estimate(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], float | None],
    samples: np.ndarray,
) -> Estimate:
    reason = _reason_undefined(a, b) if statistic is not mean_absolute_error else ("no items" if not len(a) else "")
    value = statistic(a, b)
    if value is None:
        return Estimate.undefined(reason or "undefined")
    draws = [statistic(a[idx], b[idx]) for idx in samples]
    defined = np.array([d for d in draws if d is not None], dtype=float)
    if not len(defined):
        return Estimate(value, reason="no bootstrap resample defined it")
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Estimate(value, float(low), float(high))


def _reason_undefined(a: np.ndarray, b: np.ndarray) -> str:
    """Why kappa and rank correlation mean nothing here, or ``""`` when they do."""
    if len(a) < 2:
        return f"{len(a)} item(s): at least 2 are needed"
    if len(set(a.tolist())) == 1:
        return f"human scores are all {a[0]}"
    if len(set(b.tolist())) == 1:
        return f"judge scores are all {b[0]}"
    return ""


def _as_arrays(human: Sequence[int], judge: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(human, dtype=int), np.asarray(judge, dtype=int)
    if a.shape != b.shape:
        raise ValueError(f"{len(a)} human scores but {len(b)} judge scores")
    return a, b


def length_correlation(lengths: Sequence[int], scores: Sequence[float]) -> float | None:
    """Spearman's rho between response length and score (verbosity bias); ``None`` if undefined."""
    x, y = np.asarray(lengths, dtype=float), np.asarray(scores, dtype=float)
    if len(x) < 2 or len(set(x.tolist())) == 1 or len(set(y.tolist())) == 1:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = float(spearmanr(x, y).statistic)
    return None if math.isnan(rho) else rho
