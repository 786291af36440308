"""The view's HTML: small server-rendered pages, no JavaScript, every text from the data escaped.

Pages link to each other and to their charts by relative URLs that keep the query string
(``?rubric=...&version=...``), so they work wherever the app is mounted and inside the Airflow UI's
iframe. Charts are ``<img>`` elements whose PNGs :mod:`judgeflow.quality.charts` draws, as in the run report.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from judgeflow.quality.comparison_table import MISSING, comparison_table, num
from judgeflow.quality.regression import MetricComparison
from judgeflow.storage.view_reads import LowResponse, Regression, RubricVersion, RunHealth, Scope

PAGES = (
    ("./", "Overview"),
    ("segments", "Segments"),
    ("responses", "Lowest scores"),
    ("rubrics", "Rubric versions"),
    ("review", "Review"),
)

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2328}
nav a{margin-right:1rem}
table{border-collapse:collapse;font-size:.85rem;margin-bottom:1rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text{text-align:left}
td.text{max-width:32rem}
tr.regression td,tr.worsening td{background:#ffebe9}
tr.open td{background:#fff8c5}
tr.recovered td,tr.improvement td{background:#dafbe1}
.over{color:#d1242f;font-weight:600}
.note{color:#57606a;font-style:italic}
img{max-width:100%}
form.label fieldset{margin-bottom:.75rem;border:1px solid #d0d7de}
form.label p.text{max-width:60rem;margin:.25rem 0}
"""

e = html.escape


def page(*, title: str, scope: Scope | None, query: str, body: Sequence[str]) -> str:
    suffix = f"?{query}" if query else ""
    links = " ".join(f'<a href="{e(href + suffix)}">{e(name)}</a>' for href, name in PAGES)
    heading = "no runs yet" if scope is None else f"{scope.rubric_name} {scope.rubric_version}"
    last = "" if scope is None or scope.last_day is None else f", latest day with scores {scope.last_day}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>judgeflow: {e(title)}</title><style>{_STYLE}</style></head><body>",
            f"<nav>{links}</nav>",
            f"<h1>{e(title)}</h1>",
            f'<p class="scope">rubric {e(heading)}{e(last)}</p>',
            *body,
            "</body></html>",
        ]
    )


def image(src: str, *, alt: str, query: str, present: bool) -> str:
    if not present:
        return '<p class="note">no data</p>'
    suffix = f"?{query}" if query else ""
    return f'<img src="{e(src + suffix)}" alt="{e(alt)}">'


def note(text: str) -> str:
    return f'<p class="note">{e(text)}</p>'


def table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], *, table_id: str) -> str:
    """``rows`` are ``(css class, cells)``; cells are already HTML (escape data with :func:`cell`)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "\n".join(f'<tr class="{e(css)}">' + "".join(cells) + "</tr>" for css, cells in rows)
    return f'<table id="{e(table_id)}">\n<tr>{head}</tr>\n{body}\n</table>'


def cell(value: Any, *, text: bool = False) -> str:
    css = ' class="text"' if text else ""
    return f"<td{css}>{e(str(value))}</td>"


def regressions_table(rows: Sequence[Regression]) -> str:
    if not rows:
        return note("no regressions found by recent runs")
    return table(
        ["regression", "state", "first found", "last found", "latest difference", "announced at"],
        (
            (
                r.state,
                [
                    cell(r.key, text=True),
                    cell(r.state),
                    cell(f"{r.first_found:%Y-%m-%d}"),
                    cell(f"{r.last_found:%Y-%m-%d}"),
                    cell(num(r.latest_difference, "+.2f")),
                    cell(num(r.announced_difference, "+.2f")),
                ],
            )
            for r in rows
        ),
        table_id="regressions",
    )


def health_table(rows: Sequence[RunHealth]) -> str:
    if not rows:
        return note("no runs yet")

    def cost(r: RunHealth) -> str:
        if r.budget_usd is None:
            return cell(f"${r.cost_usd:.2f}")
        over = ' class="over"' if r.cost_usd > r.budget_usd else ""
        return f"<td{over}>{e(f'${r.cost_usd:.2f} of ${r.budget_usd:.2f}')}</td>"

    return table(
        [
            "day",
            "version",
            "sample",
            "staged",
            "scored",
            "coverage",
            "errors",
            "unparseable",
            "cache hits",
            "held by budget",
            "cost",
            "noise κ",
            "noise spread",
        ],
        (
            (
                "",
                [
                    cell(f"{r.interval_start:%Y-%m-%d}"),
                    cell(r.rubric_version),
                    cell(num(r.sample_rate, ".0%")),
                    cell(r.extracted),
                    cell(r.scored),
                    cell(num(r.coverage, ".1%")),
                    cell(r.errors),
                    cell(r.malformed),
                    cell(num(r.cache_hit_rate, ".0%")),
                    cell(r.left_for_budget),
                    cost(r),
                    cell(num(r.noise_kappa, ".2f")),
                    cell(num(r.noise_spread, ".2f")),
                ],
            )
            for r in rows
        ),
        table_id="health",
    )


def segments_table(rows: Sequence[MetricComparison]) -> str:
    if not rows:
        return note("no per-segment comparisons yet")
    return comparison_table(rows, table_id="segments")


def lowest_table(rows: Sequence[LowResponse], segment_names: Sequence[str]) -> str:
    if not rows:
        return note("no scores this week")
    return table(
        ["response", "created", "overall", *segment_names, "question", "response text", "judge's rationale"],
        (
            (
                "",
                [
                    cell(r.response_id),
                    cell(f"{r.created_at:%Y-%m-%d %H:%M}"),
                    cell(num(r.overall)),
                    *[cell(r.segments.get(s, "")) for s in segment_names],
                    cell(r.question, text=True),
                    cell(r.response, text=True),
                    cell(r.rationale, text=True),
                ],
            )
            for r in rows
        ),
        table_id="lowest",
    )


def rubrics_table(rows: Sequence[RubricVersion]) -> str:
    if not rows:
        return note("no rubric versions have runs yet")
    lines = []
    for v in rows:
        agreement = _agreement(v.calibrations)
        lines.append(
            (
                "",
                [
                    cell(v.rubric_name, text=True),
                    cell(v.rubric_version),
                    cell(f"{v.first_interval:%Y-%m-%d} to {v.last_interval:%Y-%m-%d}"),
                    cell(v.runs),
                    cell(v.scored),
                    f'<td class="text">{agreement}</td>',
                ],
            )
        )
    return table(
        ["rubric", "version", "scored days", "runs", "scores", "calibration agreement (latest per model, criterion)"],
        lines,
        table_id="rubrics",
    )


def _agreement(calibrations: Sequence[dict[str, Any]]) -> str:
    if not calibrations:
        return '<span class="note">not calibrated</span>'
    parts = []
    for c in calibrations:
        verdict = "passed" if c.get("passed") else "failed"
        kappa = _interval(c.get("kappa"), c.get("kappa_low"), c.get("kappa_high"))
        rho = _interval(c.get("spearman"), c.get("spearman_low"), c.get("spearman_high"))
        mae = _interval(c.get("mae"), c.get("mae_low"), c.get("mae_high"))
        when = c.get("calibrated_at")
        parts.append(
            e(
                f"{c.get('model')} / {c.get('criterion')}: κ {kappa}, Spearman {rho}, MAE {mae}, "
                f"n={c.get('n')}, {verdict}" + (f" ({when:%Y-%m-%d})" if when else "")
            )
        )
    return "<br>".join(parts)


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return MISSING
    if low is None or high is None:
        return f"{value:.2f}"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"
