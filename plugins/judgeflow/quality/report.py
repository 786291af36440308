"""One HTML page per run, with PNG charts: what the regression report says, for a person to read.

:func:`write_run_report` writes ``<folder>/<run slug>/`` holding ``index.html`` and the PNGs it
links to by relative name, so the directory can be copied or served as it is (no external assets).
``folder`` is a local path or an object-storage URL (``s3://...``, ``file://...``): the bytes go
through :class:`airflow.sdk.ObjectStoragePath`.

Charts (drawn by :mod:`judgeflow.quality.charts`, which the Airflow UI view calls too):

- ``distributions.png``: per metric (``overall`` first, then each criterion) one small panel with
  the share of each score value, baseline window vs current window (``overall`` as histograms);
- ``segment_differences.png``: ``current - baseline`` per segment row with its bootstrap 95% CI,
  regression rows in red.

A chart with nothing to draw becomes a "no data" note on the page: an empty window or a report
without segment rows still gives a page, never an exception. Every text from the data (segment
values, metric names, the title) is HTML-escaped. Writing is idempotent: a rerun of the same
``run_key`` overwrites the same files.

matplotlib and pandas are imported inside the functions: the DAG processor imports this module's
callers when it parses the DAG file, and matplotlib would cost it a second.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from judgeflow.quality.charts import ValueCounts, WindowCounts, distributions_png, segments_png
from judgeflow.quality.comparison_table import comparison_table
from judgeflow.quality.judge_quality import LengthBias, length_bias_lines
from judgeflow.quality.redaction import redact
from judgeflow.quality.regression import MetricComparison, RegressionReport
from judgeflow.quality.stats import CREATED_AT, OVERALL, SegmentPull

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

DISTRIBUTIONS_PNG = "distributions.png"
SEGMENTS_PNG = "segment_differences.png"
INDEX_HTML = "index.html"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.regression td{background:#ffebe9}
tr.improvement td{background:#dafbe1}
.note{color:#57606a;font-style:italic}
.headline{font-size:1.1rem}
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
    pulls: Sequence[SegmentPull] = (),
    links: Sequence[tuple[str, str]] = (),
    length_bias: LengthBias | None = None,
) -> str:
    """Write ``index.html`` and its PNGs under ``folder/<slug of run_key>/``; return the page's URL or path.

    The page opens with its headline (did quality drop, which metric where, by how much), the likely
    cause (the segments that pull the current mean down: ``pulls``, as :func:`~judgeflow.quality.stats.root_causes`
    gives them) and ``links`` (``(label, url)``: the Airflow run, the view's pages), then the details.

    The current window is ``[report.current_start, report.current_end)``, the baseline
    ``[report.baseline_start, report.current_start)``, the same windows the report compared.
    Existing files of the same run are overwritten. Raises only for storage errors.
    """
    from airflow.sdk import ObjectStoragePath

    metrics = [OVERALL, *(c for c in criteria if c != OVERALL)]
    windows = _split(scores, report)
    images = {
        DISTRIBUTIONS_PNG: distributions_png({m: _window_counts(windows, m) for m in metrics}),
        SEGMENTS_PNG: segments_png([c for c in report.comparisons if c.segment is not None]),
    }
    page = _render_html(report=report, title=title, images=images, pulls=pulls, links=links, length_bias=length_bias)

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


def _window_counts(windows: _Windows, metric: str) -> WindowCounts:
    """Both windows' value counts of ``metric``: what :func:`judgeflow.quality.charts.distributions_png` draws."""
    return WindowCounts(_counts(windows.baseline, metric), _counts(windows.current, metric))


def _counts(frame: pd.DataFrame, metric: str) -> ValueCounts:
    if metric not in frame.columns:
        return ValueCounts.empty()
    return ValueCounts.of(frame[metric].to_numpy(dtype=float, na_value=np.nan))


# --- page ---------------------------------------------------------------------------------------


def headline(report: RegressionReport) -> str:
    """One sentence: the worst regression with its difference and interval, or that there is none."""
    worst = sorted(report.regressions, key=lambda c: c.difference or 0.0)
    if worst:
        c = worst[0]
        where = f"in {c.segment}" if c.segment else "over all responses"
        more = f"; {len(worst)} regressions in all" if len(worst) > 1 else ""
        return f"Quality dropped: {c.metric} {where} {_change(c)}{more}."
    overall = next((c for c in report.comparisons if c.metric == OVERALL and c.segment is None), None)
    if overall is None or overall.current_mean is None:
        return "Nothing to compare: the current window has no scores."
    return f"No regression: overall {_change(overall)}."


def _change(c: MetricComparison) -> str:
    ci = "" if c.ci_low is None or c.ci_high is None else f", 95% CI [{c.ci_low:+.2f}, {c.ci_high:+.2f}]"
    base = "no baseline" if c.baseline_mean is None else f"{c.baseline_mean:.2f} (n={c.baseline_n})"
    now = "none" if c.current_mean is None else f"{c.current_mean:.2f} (n={c.current_n})"
    diff = "" if c.difference is None else f" {c.difference:+.2f}"
    return f"from {base} to {now},{diff}{ci}"


def cause(pulls: Sequence[SegmentPull]) -> str:
    """The segments that pull the current mean down most, or an empty string when none does."""
    down = [p for p in pulls if p.pull < 0][:3]
    return "; ".join(
        f"{p.segment} pulls the {p.metric} mean down by {-p.pull:.2f} (its mean {p.mean:.2f} over {p.share:.0%} "
        "of the responses)"
        for p in down
    )


def _render_html(
    *,
    report: RegressionReport,
    title: str,
    images: dict[str, bytes | None],
    pulls: Sequence[SegmentPull] = (),
    links: Sequence[tuple[str, str]] = (),
    length_bias: LengthBias | None = None,
) -> str:
    e = html.escape
    why = cause(pulls)
    top = [f'<p class="headline" id="headline"><strong>{e(headline(report))}</strong></p>']
    if why:
        top.append(f'<p id="cause">Likely cause: {e(why)}.</p>')
    if links:
        top.append('<p id="links">' + " · ".join(f'<a href="{e(url)}">{e(label)}</a>' for label, url in links) + "</p>")
    windows = (
        f"baseline [{report.baseline_start.isoformat()}, {report.current_start.isoformat()}) vs "
        f"current [{report.current_start.isoformat()}, {report.current_end.isoformat()})"
    )
    rules = (
        f"alpha={report.alpha:g}, min_samples={report.min_samples}, min_drop={report.min_drop:g}, "
        f"power={report.power:g}, segments pool up to {report.max_pool_days} days"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        *top,
        f"<p>{e(windows)}<br>{e(rules)}</p>",
        *_root_cause(report),
        "<h2>Comparisons</h2>",
        _table(report.comparisons),
        "<h2>Score distributions</h2>",
        _image(DISTRIBUTIONS_PNG, images.get(DISTRIBUTIONS_PNG), alt="score distributions, baseline vs current"),
        "<h2>Per-segment differences</h2>",
        _image(SEGMENTS_PNG, images.get(SEGMENTS_PNG), alt="per-segment differences with 95% CI"),
        *_length_section(length_bias),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _root_cause(report: RegressionReport) -> list[str]:
    """The root cause's sentence, when there is a drop to explain."""
    cause = report.root_cause
    if cause is None or cause.kind.value == "none":
        return []
    return [
        "<h2>Root cause</h2>",
        f'<p id="root-cause" class="{html.escape(cause.kind.value)}">{html.escape(redact(cause.text))}</p>',
    ]


def _length_section(bias: LengthBias | None) -> list[str]:
    """Length against score for the current window (:func:`judgeflow.quality.judge_quality.length_bias`)."""
    if bias is None:
        return []
    e = html.escape
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in length_bias_lines(bias))
    return ["<h2>Length and score</h2>", f'<table id="length-bias">{rows}</table>']


def _image(name: str, png: bytes | None, *, alt: str) -> str:
    if png is None:
        return '<p class="note">no data</p>'
    return f'<img src="{html.escape(name)}" alt="{html.escape(alt)}">'


def _table(rows: Sequence[MetricComparison]) -> str:
    if not rows:
        return '<p class="note">no data: nothing was compared</p>'
    return comparison_table(rows)


__all__ = ["DISTRIBUTIONS_PNG", "INDEX_HTML", "SEGMENTS_PNG", "write_run_report"]
