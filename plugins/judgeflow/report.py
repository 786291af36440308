"""One HTML page per run, with PNG charts: what the regression report says, for a person to read.

:func:`write_run_report` writes ``<folder>/<run slug>/`` holding ``index.html`` and the PNGs it
links to by relative name, so the directory can be copied or served as it is (no external assets).
``folder`` is a local path or an object-storage URL (``s3://...``, ``file://...``): the bytes go
through :class:`airflow.sdk.ObjectStoragePath`.

Charts:

- ``distributions.png``: per metric (``overall`` first, then each criterion) one small panel with
  the share of each score value, baseline window vs current window (``overall`` as histograms);
- ``segment_differences.png``: ``current - baseline`` per segment row with its bootstrap 95% CI,
  regression rows in red.

A chart with nothing to draw becomes a "no data" note on the page: an empty window or a report
without segment rows still gives a page, never an exception. Every text from the data (segment
values, metric names, the title) is HTML-escaped. Writing is idempotent: a rerun of the same
``run_key`` overwrites the same files.

matplotlib and pandas are imported inside the functions: Airflow imports modules under
``plugins/`` while it scans for plugins, and matplotlib is heavy.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from judgeflow.regression import MetricComparison, RegressionReport
from judgeflow.regression_stats import CREATED_AT, OVERALL

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DISTRIBUTIONS_PNG = "distributions.png"
SEGMENTS_PNG = "segment_differences.png"
INDEX_HTML = "index.html"

_DPI = 100
_MAX_DISCRETE_VALUES = 12
"""A criterion with at most this many distinct values is drawn as bars per value, else as a histogram."""

_BASELINE_COLOR, _CURRENT_COLOR, _REGRESSION_COLOR, _OTHER_COLOR = "#9aa5b1", "#1f6feb", "#d1242f", "#57606a"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.regression td{background:#ffebe9}
tr.improvement td{background:#dafbe1}
.note{color:#57606a;font-style:italic}
img{max-width:100%}
"""


class _Windows(NamedTuple):
    baseline: pd.DataFrame
    current: pd.DataFrame


def write_run_report(
    *,
    scores: pd.DataFrame,
    report: RegressionReport,
    criteria: Sequence[str],
    folder: str,
    run_key: str,
    title: str,
) -> str:
    """Write ``index.html`` and its PNGs under ``folder/<slug of run_key>/``; return the page's URL or path.

    The current window is ``[report.current_start, report.current_end)``, the baseline
    ``[report.baseline_start, report.current_start)``, the same windows the report compared.
    Existing files of the same run are overwritten. Raises only for storage errors.
    """
    from airflow.sdk import ObjectStoragePath

    metrics = [OVERALL, *(c for c in criteria if c != OVERALL)]
    windows = _split(scores, report)
    images = {
        DISTRIBUTIONS_PNG: _distributions_png(windows, metrics),
        SEGMENTS_PNG: _segments_png([c for c in report.comparisons if c.segment is not None]),
    }
    page = _render_html(report=report, title=title, images=images)

    run_dir = ObjectStoragePath(_storage_url(folder)) / _slug(run_key)
    if run_dir.protocol in ("", "file", "local"):
        run_dir.mkdir(parents=True, exist_ok=True)
    for name, png in images.items():
        if png is not None:
            _write(run_dir / name, png)
    index = run_dir / INDEX_HTML
    _write(index, page.encode("utf-8"))
    return str(index)


def _storage_url(folder: str) -> str:
    """A plain local path as an absolute ``file://`` URL; URLs as they are."""
    if "://" in folder:
        return folder
    from pathlib import Path

    return Path(folder).resolve().as_uri()


def _slug(run_key: str) -> str:
    """A filesystem-safe directory name: anything outside ``[A-Za-z0-9._-]`` becomes ``_``."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", run_key)
    if not slug.strip("."):  # "", "." and ".." would name no directory, or the parent
        slug = "_" * max(len(slug), 1)
    return slug


def _write(path: ObjectStoragePath, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)


def _split(scores: pd.DataFrame, report: RegressionReport) -> _Windows:
    """The report's two windows; both empty when ``scores`` has no ``created_at`` column."""
    if CREATED_AT not in scores.columns or scores.empty:
        return _Windows(scores.iloc[0:0], scores.iloc[0:0])
    created = scores[CREATED_AT]
    baseline = scores[(created >= report.baseline_start) & (created < report.current_start)]
    current = scores[(created >= report.current_start) & (created < report.current_end)]
    return _Windows(baseline, current)


def _metric_values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in frame.columns:
        return np.empty(0)
    values = frame[metric].to_numpy(dtype=float, na_value=np.nan)
    return values[~np.isnan(values)]


# --- charts -------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A figure outside pyplot's registry: nothing global to close, safe in threads."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _plain(text: str) -> str:
    """Data text as a literal label: an unescaped ``$`` would start matplotlib mathtext (and may fail)."""
    return text.replace("$", r"\$")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    figure.clear()
    return buffer.getvalue()


def _distributions_png(windows: _Windows, metrics: Sequence[str]) -> bytes | None:
    """Small multiples, one panel per metric; ``None`` when neither window holds a score."""
    samples = {m: (_metric_values(windows.baseline, m), _metric_values(windows.current, m)) for m in metrics}
    if not any(b.size or c.size for b, c in samples.values()):
        return None
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure = _new_figure(4.0 * columns, 3.0 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        baseline, current = samples[metric]
        _distribution_panel(ax, metric, baseline=baseline, current=current)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    return _png(figure)


def _distribution_panel(ax: Axes, metric: str, *, baseline: np.ndarray, current: np.ndarray) -> None:
    ax.set_title(_plain(metric), fontsize=10)
    ax.set_ylabel("share of responses", fontsize=8)
    if not (baseline.size or current.size):
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    samples = [
        (sample, f"{name} (n={sample.size})", color)
        for sample, name, color in ((baseline, "baseline", _BASELINE_COLOR), (current, "current", _CURRENT_COLOR))
    ]
    distinct = np.unique(np.concatenate([baseline, current]))
    if metric != OVERALL and distinct.size <= _MAX_DISCRETE_VALUES:
        _share_bars(ax, samples, distinct)
    else:
        _share_histogram(ax, [s for s in samples if s[0].size], bins=min(20, distinct.size))
    ax.legend(fontsize=7)


def _share_bars(ax: Axes, samples: Sequence[tuple[np.ndarray, str, str]], distinct: np.ndarray) -> None:
    """Side-by-side bars: the share of each window's responses with each score value."""
    positions = np.arange(distinct.size)
    for offset, (sample, label, color) in zip((-0.2, 0.2), samples, strict=True):
        shares = [float(np.mean(sample == v)) if sample.size else 0.0 for v in distinct]
        ax.bar(positions + offset, shares, width=0.4, label=label, color=color)
    ax.set_xticks(positions, [f"{v:g}" for v in distinct])


def _share_histogram(ax: Axes, samples: Sequence[tuple[np.ndarray, str, str]], *, bins: int) -> None:
    """Side-by-side histograms weighted to shares, so windows of different sizes compare."""
    edges = np.histogram_bin_edges(np.concatenate([s for s, _, _ in samples]), bins=bins)
    ax.hist(
        [s for s, _, _ in samples],
        bins=edges.tolist(),
        weights=[np.full(s.size, 1.0 / s.size) for s, _, _ in samples],
        label=[label for _, label, _ in samples],
        color=[color for _, _, color in samples],
    )


def _segments_png(rows: Sequence[MetricComparison]) -> bytes | None:
    """Horizontal bars of ``difference`` per segment row with CI error bars; ``None`` if none has one."""
    rows = [r for r in rows if r.difference is not None]
    if not rows:
        return None
    differences = np.array([r.difference for r in rows], dtype=float)
    low = np.array([np.nan if r.ci_low is None else r.ci_low for r in rows], dtype=float)
    high = np.array([np.nan if r.ci_high is None else r.ci_high for r in rows], dtype=float)
    xerr = np.nan_to_num(np.clip([differences - low, high - differences], 0.0, None), nan=0.0)
    figure = _new_figure(8.0, max(2.5, 0.3 * len(rows) + 1.2))
    ax = figure.subplots()
    positions = np.arange(len(rows))
    colors = [_REGRESSION_COLOR if r.status.is_regression else _OTHER_COLOR for r in rows]
    ax.barh(positions, differences, xerr=xerr, color=colors, ecolor="#1f2328", capsize=2)
    ax.set_yticks(positions, [_plain(r.label) for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0.0, color="#1f2328", linewidth=0.8)
    ax.set_xlabel("current - baseline (mean score), 95% bootstrap CI")
    ax.set_title("Per-segment differences (red: regression)", fontsize=10)
    return _png(figure)


# --- page ---------------------------------------------------------------------------------------


def _render_html(*, report: RegressionReport, title: str, images: dict[str, bytes | None]) -> str:
    e = html.escape
    windows = (
        f"baseline [{report.baseline_start.isoformat()}, {report.current_start.isoformat()}) vs "
        f"current [{report.current_start.isoformat()}, {report.current_end.isoformat()})"
    )
    rules = f"alpha={report.alpha:g}, min_samples={report.min_samples}, min_drop={report.min_drop:g}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(windows)}<br>{e(rules)}</p>",
        "<h2>Comparisons</h2>",
        _table(report.comparisons),
        "<h2>Score distributions</h2>",
        _image(DISTRIBUTIONS_PNG, images.get(DISTRIBUTIONS_PNG), alt="score distributions, baseline vs current"),
        "<h2>Per-segment differences</h2>",
        _image(SEGMENTS_PNG, images.get(SEGMENTS_PNG), alt="per-segment differences with 95% CI"),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _image(name: str, png: bytes | None, *, alt: str) -> str:
    if png is None:
        return '<p class="note">no data</p>'
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'


def _table(rows: Sequence[MetricComparison]) -> str:
    if not rows:
        return '<p class="note">no data: nothing was compared</p>'
    header = (
        "<tr><th>comparison</th><th>baseline n</th><th>baseline mean</th><th>current n</th>"
        "<th>current mean</th><th>difference [95% CI]</th><th>q</th><th>status</th></tr>"
    )
    body = [
        f'<tr class="{html.escape(r.status.value)}"><td>{html.escape(r.label)}</td>'
        f"<td>{r.baseline_n}</td><td>{_num(r.baseline_mean)}</td>"
        f"<td>{r.current_n}</td><td>{_num(r.current_mean)}</td>"
        f"<td>{_difference(r)}</td><td>{_num(r.q_value, '.3g')}</td><td>{html.escape(r.status.value)}</td></tr>"
        for r in rows
    ]
    return "<table>\n" + header + "\n" + "\n".join(body) + "\n</table>"


def _num(value: float | None, spec: str = ".2f") -> str:
    return "&ndash;" if value is None else format(value, spec)


def _difference(row: MetricComparison) -> str:
    text = _num(row.difference, "+.2f")
    if row.ci_low is not None and row.ci_high is not None:
        text += f" [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"
    return text


__all__ = ["DISTRIBUTIONS_PNG", "INDEX_HTML", "SEGMENTS_PNG", "write_run_report"]
