"""How far the judge itself can be trusted: its noise, its agreement with people, its length bias.

Pure functions over plain numbers, so the pipeline (noise per day), the report and the view
(judge against reviewers, length bias) compute the same figures the same way. The view may not
import :mod:`judgeflow.rubrics` (docs/architecture.md), which is why these statistics, and
:mod:`judgeflow.quality.agreement` they build on, live in ``quality``.

- **Test-retest noise**: a sampled response judged twice. Every criterion of every pair is one
  (first, second) observation; the quadratic-weighted kappa between the asks says how much of the
  score is signal, the mean absolute spread how many points an ask moves on average.
- **Length bias** (after AlpacaEval's length-controlled win rate): regress the score on the log of
  the response's length, then report the mean score a response of the reference length would get.
  A judge that rewards verbosity shows a positive slope; the controlled mean takes a day whose
  answers got longer back to the reference length, so a "better" day that is only wordier is seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from judgeflow.quality.agreement import Agreement, Estimate, agreement, length_correlation


@dataclass(frozen=True, slots=True)
class NoiseSummary:
    """One day's noise sample: ``pairs`` criterion pairs over ``responses`` responses judged twice."""

    responses: int
    pairs: int
    kappa: Estimate
    mean_abs_spread: float | None
    unstable: int

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "responses": self.responses,
            "pairs": self.pairs,
            "kappa": self.kappa.value,
            "kappa_low": self.kappa.low,
            "kappa_high": self.kappa.high,
            "mean_abs_spread": self.mean_abs_spread,
            "unstable": self.unstable,
        }


def noise_summary(
    asks: Sequence[tuple[dict[str, int], dict[str, int]]],
    *,
    scale_min: int,
    scale_max: int,
    unstable_spread: int,
    resamples: int = 1000,
) -> NoiseSummary:
    """The figures of a day's pairs of asks (first, second scores per criterion); pairs whose
    second ask failed (empty) are left out."""
    complete = [(a, b) for a, b in asks if b]
    first = [a[c] for a, b in complete for c in a if c in b]
    second = [b[c] for a, b in complete for c in a if c in b]
    unstable = sum(1 for a, b in complete if max(abs(a[c] - b[c]) for c in a if c in b) >= unstable_spread)
    kappa = agreement(first, second, scale_min=scale_min, scale_max=scale_max, resamples=resamples).kappa
    spread = float(np.abs(np.subtract(first, second)).mean()) if first else None
    return NoiseSummary(len(complete), len(first), kappa, spread, unstable)


def judge_vs_people(
    people: Sequence[int], judge: Sequence[int], *, scale_min: int, scale_max: int, resamples: int = 1000
) -> Agreement:
    """Kappa, Spearman and MAE of the judge against reviewers' labels, with bootstrap intervals."""
    return agreement(people, judge, scale_min=scale_min, scale_max=scale_max, resamples=resamples)


@dataclass(frozen=True, slots=True)
class LengthBias:
    """Score against length over ``n`` responses; ``None`` figures when they are undefined."""

    n: int
    spearman: float | None
    slope_per_doubling: float | None
    """Points the score moves when the response doubles in length (the regression on log2 length)."""
    reference_chars: float | None
    raw_mean: float | None
    controlled_mean: float | None
    """The regression's mean score at ``reference_chars``."""

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "n": self.n,
            "spearman": self.spearman,
            "slope_per_doubling": self.slope_per_doubling,
            "reference_chars": self.reference_chars,
            "raw_mean": self.raw_mean,
            "controlled_mean": self.controlled_mean,
        }


def length_bias(lengths: Sequence[int], scores: Sequence[float], *, reference_chars: float | None = None) -> LengthBias:
    """Regress ``scores`` on ``log2(length + 1)`` by least squares; the controlled mean is the fit at
    ``reference_chars`` (default: the median length of these responses)."""
    x = np.log2(np.asarray(lengths, dtype=float) + 1.0)
    y = np.asarray(scores, dtype=float)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} lengths but {len(y)} scores")
    raw = float(y.mean()) if len(y) else None
    if len(y) < 3 or float(np.ptp(x)) == 0.0:
        return LengthBias(len(y), None, None, reference_chars, raw, None)
    reference = float(np.median(lengths)) if reference_chars is None else float(reference_chars)
    slope, intercept = np.polyfit(x, y, 1)
    controlled = float(intercept + slope * math.log2(reference + 1.0))
    return LengthBias(len(y), length_correlation(list(lengths), list(scores)), float(slope), reference, raw, controlled)


def length_bias_lines(bias: LengthBias) -> list[tuple[str, str]]:
    """The figures as (label, text) pairs, for the report and the view alike."""

    def fmt(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    return [
        ("responses", str(bias.n)),
        ("length-score Spearman", fmt(bias.spearman, ".2f")),
        ("points per doubling of length", fmt(bias.slope_per_doubling, "+.2f")),
        ("reference length (characters)", fmt(bias.reference_chars, ".0f")),
        ("mean score", fmt(bias.raw_mean, ".2f")),
        ("length-controlled mean", fmt(bias.controlled_mean, ".2f")),
    ]
