"""The PNG charts judgeflow draws, shared by the per-run report and the Airflow UI view.

One implementation, two callers: :mod:`judgeflow.quality.report` counts the values of its DataFrame windows,
the UI view reads the same counts from the warehouse with SQL (``judge_daily_scores``), and both
hand them to :func:`distributions_png`. Per-segment differences are :class:`MetricComparison`
rows either way (the report's, or the ones ``judge_comparisons`` stored), drawn by
:func:`segments_png`. :func:`trend_png` draws the daily means the view shows.

Figures are made outside pyplot's registry (thread-safe, nothing global to close), each on its own
Agg canvas: the process-wide backend (``matplotlib.use``) is never switched, since the charts are
drawn inside Airflow's api-server and tasks. matplotlib is imported inside the functions: Airflow
imports plugin modules at start-up.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from judgeflow.quality.stats import OVERALL

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from judgeflow.quality.regression import MetricComparison

_DPI = 100
MAX_DISCRETE_VALUES = 12
"""A criterion with at most this many distinct values is drawn as bars per value, else as a histogram."""

BASELINE_COLOR, CURRENT_COLOR, REGRESSION_COLOR, OTHER_COLOR = "#9aa5b1", "#1f6feb", "#d1242f", "#57606a"
_TREND_COLORS = ("#1f2328", "#1f6feb", "#bf8700", "#8250df", "#1a7f37", "#cf222e", "#57606a")


class ValueCounts(NamedTuple):
    """How many responses had each score value: ``values`` ascending, ``counts`` beside them."""

    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, sample: np.ndarray) -> ValueCounts:
        """The counts of a raw sample (NaN left out)."""
        sample = np.asarray(sample, dtype=float)
        values, counts = np.unique(sample[~np.isnan(sample)], return_counts=True)
        return cls(values, counts.astype(float))

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[float, float]]) -> ValueCounts:
        """Counts read back from SQL as ``(value, count)`` rows, in any order, values possibly repeated."""
        if not pairs:
            return cls.empty()
        raw = np.array(pairs, dtype=float)
        values, inverse = np.unique(raw[:, 0], return_inverse=True)
        return cls(values, np.bincount(inverse, weights=raw[:, 1]).astype(float))

    @classmethod
    def empty(cls) -> ValueCounts:
        return cls(np.empty(0), np.empty(0))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def shares_at(self, values: np.ndarray) -> np.ndarray:
        """The share of responses at each of ``values`` (0 where this window has none)."""
        if not self.total:
            return np.zeros(values.size)
        lookup = dict(zip(self.values.tolist(), self.counts.tolist(), strict=True))
        return np.array([lookup.get(v, 0.0) for v in values.tolist()]) / self.total


class WindowCounts(NamedTuple):
    """One metric's counts in the two windows compared (baseline/current, last week/this week)."""

    baseline: ValueCounts
    current: ValueCounts


def new_figure(width: float, height: float) -> Figure:
    """A figure outside pyplot's registry: nothing global to close, safe in threads.

    Margins are set by each chart (``subplots_adjust``) rather than by a layout engine: constrained
    layout measures every label again and doubles the drawing time, which a page view pays."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)  # this figure draws with Agg; matplotlib's process-wide backend is left alone
    return figure


def _margins(
    figure: Figure,
    *,
    left: float,
    right: float = 0.2,
    top: float = 0.35,
    bottom: float = 0.5,
    wspace: float = 0.0,
    hspace: float = 0.0,
) -> None:
    """Fixed margins in inches (turned into the figure fractions ``subplots_adjust`` wants)."""
    width, height = figure.get_size_inches()
    figure.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=wspace,
        hspace=hspace,
    )


def plain(text: str) -> str:
    """Data text as a literal label: an unescaped ``$`` would start matplotlib mathtext (and may fail)."""
    return text.replace("$", r"\$")


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    figure.clear()
    return buffer.getvalue()


# --- distributions ------------------------------------------------------------------------------


def distributions_png(
    counts: Mapping[str, WindowCounts], *, labels: tuple[str, str] = ("baseline", "current")
) -> bytes | None:
    """Small multiples, one panel per metric in ``counts``' order; ``None`` when no window holds a score.

    ``labels`` name the two windows in the legend."""
    if not any(w.baseline.total or w.current.total for w in counts.values()):
        return None
    metrics = list(counts)
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure = new_figure(4.0 * columns, 3.0 * rows)
    _margins(figure, left=0.6, wspace=0.3, hspace=0.45, bottom=0.4)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        _distribution_panel(ax, metric, counts[metric], labels)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    return to_png(figure)


def _distribution_panel(ax: Axes, metric: str, windows: WindowCounts, labels: tuple[str, str]) -> None:
    ax.set_title(plain(metric), fontsize=10)
    ax.set_ylabel("share of responses", fontsize=8)
    if not (windows.baseline.total or windows.current.total):
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    samples = [
        (window, f"{name} (n={window.total})", color)
        for window, name, color in zip(windows, labels, (BASELINE_COLOR, CURRENT_COLOR), strict=True)
    ]
    distinct = np.unique(np.concatenate([windows.baseline.values, windows.current.values]))
    if metric != OVERALL and distinct.size <= MAX_DISCRETE_VALUES:
        _share_bars(ax, samples, distinct)
    else:
        _share_histogram(ax, [s for s in samples if s[0].total], bins=min(20, distinct.size))
    ax.legend(fontsize=7)


def _share_bars(ax: Axes, samples: Sequence[tuple[ValueCounts, str, str]], distinct: np.ndarray) -> None:
    """Side-by-side bars: the share of each window's responses with each score value."""
    positions = np.arange(distinct.size)
    for offset, (window, label, color) in zip((-0.2, 0.2), samples, strict=True):
        ax.bar(positions + offset, window.shares_at(distinct), width=0.4, label=label, color=color)
    ax.set_xticks(positions, [f"{v:g}" for v in distinct])


def _share_histogram(ax: Axes, samples: Sequence[tuple[ValueCounts, str, str]], *, bins: int) -> None:
    """Side-by-side histograms weighted to shares, so windows of different sizes compare."""
    edges = np.histogram_bin_edges(np.concatenate([w.values for w, _, _ in samples]), bins=bins)
    ax.hist(
        [w.values for w, _, _ in samples],
        bins=edges.tolist(),
        weights=[w.counts / w.total for w, _, _ in samples],
        label=[label for _, label, _ in samples],
        color=[color for _, _, color in samples],
    )


# --- per-segment differences --------------------------------------------------------------------


def segments_png(rows: Sequence[MetricComparison]) -> bytes | None:
    """Horizontal bars of ``difference`` per segment row with CI error bars; ``None`` if none has one."""
    rows = [r for r in rows if r.difference is not None]
    if not rows:
        return None
    differences = np.array([r.difference for r in rows], dtype=float)
    low = np.array([np.nan if r.ci_low is None else r.ci_low for r in rows], dtype=float)
    high = np.array([np.nan if r.ci_high is None else r.ci_high for r in rows], dtype=float)
    xerr = np.nan_to_num(np.clip([differences - low, high - differences], 0.0, None), nan=0.0)
    figure = new_figure(8.0, max(2.5, 0.3 * len(rows) + 1.2))
    longest = max(len(r.label) for r in rows)
    _margins(figure, left=min(3.5, 0.3 + 0.065 * longest), bottom=0.6)
    ax = figure.subplots()
    positions = np.arange(len(rows))
    colors = [REGRESSION_COLOR if r.status.is_regression else OTHER_COLOR for r in rows]
    ax.barh(positions, differences, xerr=xerr, color=colors, ecolor="#1f2328", capsize=2)
    ax.set_yticks(positions, [plain(r.shown_label) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.0, color="#1f2328", linewidth=0.8)
    ax.set_xlabel("current - baseline (mean score), 95% bootstrap CI")
    ax.set_title("Per-segment differences (red: regression)", fontsize=10)
    return to_png(figure)


# --- daily trend --------------------------------------------------------------------------------


class TrendPoint(NamedTuple):
    day: dt.date
    metric: str
    n: int
    mean: float


def trend_png(points: Sequence[TrendPoint]) -> bytes | None:
    """One line per metric (``overall`` bold), daily mean score; ``None`` without points."""
    if not points:
        return None
    metrics = [OVERALL, *sorted({p.metric for p in points} - {OVERALL})]
    figure = new_figure(10.0, 3.6)
    _margins(figure, left=0.7, bottom=0.9)
    ax = figure.subplots()
    for index, metric in enumerate(metrics):
        series = sorted((p.day, p.mean) for p in points if p.metric == metric)
        if not series:
            continue
        days, means = zip(*series, strict=True)
        ax.plot(
            days,
            means,
            marker="o",
            markersize=3,
            linewidth=2.4 if metric == OVERALL else 1.2,
            color=_TREND_COLORS[index % len(_TREND_COLORS)],
            label=plain(metric),
        )
    ax.set_ylabel("mean score")
    ax.set_title("Daily mean score per criterion (by the day the responses were created)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=min(4, len(metrics)))
    figure.autofmt_xdate()
    return to_png(figure)


__all__ = [
    "TrendPoint",
    "ValueCounts",
    "WindowCounts",
    "distributions_png",
    "segments_png",
    "trend_png",
]
