"""The view's HTML: small server-rendered pages, no JavaScript, every text from the data escaped.

Pages link to each other and to their charts by relative URLs that keep the query string
(``?rubric=...&version=...``), so they work wherever the app is mounted and inside the Airflow UI's
iframe. Charts are ``<img>`` elements whose PNGs :mod:`judgeflow.quality.charts` draws, as in the run report.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from judgeflow.quality.alert_state import Reference
from judgeflow.quality.comparison_table import MISSING, comparison_table, num
from judgeflow.quality.regression import MetricComparison
from judgeflow.storage.view_reads import LowResponse, Regression, RubricVersion, RunHealth, Scope, Status

PAGES = (
    ("./", "Overview"),
    ("segments", "Segments"),
    ("responses", "Responses"),
    ("rubrics", "Rubric versions"),
    ("review", "Review"),
)
"""The view's navigation; an entry is shown only when the app has its route (``review`` comes with issue 17)."""

THEME_KEY = "theme"
"""Where Airflow 3's UI keeps the user's colour mode: ``localStorage["theme"]`` = ``light`` | ``dark`` |
``system`` (next-themes' default key, which Airflow's ``ColorModeProvider`` keeps). The view is served
from the api-server's own origin, so it reads the same key."""

# Airflow 3's palette (its Chakra theme: gray and brand in oklch, Inter), as CSS variables per mode.
_STYLE = """
:root{--bg:#fff;--fg:#000;--muted:oklch(0.45 0.055 251);--border:oklch(0.915 0.01 253);
--subtle:oklch(0.985 0.004 253);--head:oklch(0.955 0.006 253);--link:oklch(0.469 0.084 257.657);
--bad:oklch(0.936 0.032 17.717);--warn:oklch(0.962 0.059 95.617);--good:oklch(0.962 0.044 156.743);
--bad-fg:oklch(0.505 0.213 27.518);--good-fg:oklch(0.448 0.119 151.328);color-scheme:light}
:root[data-theme=dark]{--bg:#000;--fg:oklch(0.985 0.004 253);--muted:oklch(0.75 0.025 252);
--border:oklch(0.28 0.035 251);--subtle:oklch(0.11 0.025 251);--head:oklch(0.18 0.03 251);
--link:oklch(0.865 0.039 252.420);--bad:oklch(0.258 0.092 26.042);--warn:oklch(0.286 0.066 53.813);
--good:oklch(0.266 0.065 152.934);--bad-fg:oklch(0.808 0.114 19.571);--good-fg:oklch(0.792 0.209 151.711);
color-scheme:dark}
body{font-family:Inter,ui-sans-serif,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
padding:1rem 1.5rem;background:var(--bg);color:var(--fg);font-size:.875rem;line-height:1.45}
a{color:var(--link)}
nav{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;border-bottom:1px solid var(--border);
padding-bottom:.5rem;margin-bottom:.75rem}
nav a{text-decoration:none;font-weight:500;padding:.25rem 0}
nav a[aria-current=page]{border-bottom:2px solid var(--link)}
nav form{margin-left:auto;display:flex;gap:.5rem;align-items:center}
select,button{font:inherit;color:var(--fg);background:var(--subtle);border:1px solid var(--border);
border-radius:.375rem;padding:.2rem .4rem}
h1{font-size:1.25rem;margin:.25rem 0}h2{font-size:1rem;margin:1.25rem 0 .5rem}
.status{border:1px solid var(--border);border-radius:.5rem;padding:.75rem 1rem;margin:.75rem 0;
background:var(--subtle)}
.status.regression{background:var(--bad);border-color:var(--bad-fg)}
.status.clear{background:var(--good);border-color:var(--good-fg)}
.status strong{font-size:1rem}
.status ul{margin:.4rem 0 0;padding-left:1.2rem}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.8rem;margin-bottom:1rem}
th{background:var(--head);font-weight:600}
th,td{border:1px solid var(--border);padding:.25rem .5rem;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text{text-align:left}
td:not(.text){white-space:nowrap}
td.text{min-width:12rem;max-width:32rem}
tr.regression td,tr.worsening td{background:var(--bad)}
tr.open td{background:var(--warn)}
tr.recovered td,tr.improvement td{background:var(--good)}
.over{color:var(--bad-fg);font-weight:600}
.note,.scope{color:var(--muted)}
.note{font-style:italic}
.chart{max-width:100%;height:auto;display:block}
:root[data-theme=dark] .chart{filter:invert(.92) hue-rotate(180deg)}
form.label fieldset{margin-bottom:.75rem;border:1px solid var(--border)}
form.label p.text{max-width:60rem;margin:.25rem 0}
"""

_THEME_SCRIPT = f"""
(function(){{
function apply(){{var t;try{{t=localStorage.getItem("{THEME_KEY}")}}catch(e){{}}
if(t!=="light"&&t!=="dark"){{t=matchMedia("(prefers-color-scheme: dark)").matches?"dark":"light"}}
document.documentElement.dataset.theme=t}}
apply();
addEventListener("storage",function(e){{if(e.key==="{THEME_KEY}")apply()}});
matchMedia("(prefers-color-scheme: dark)").addEventListener("change",apply);
}})();
"""
"""Follows the user's Airflow colour mode before the first paint, and live when it is switched in the UI
(another document of the same origin changing ``localStorage`` fires ``storage`` here)."""

e = html.escape


def nav_for(paths: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The entries of :data:`PAGES` whose route the app has (``./`` is ``/``)."""
    present = set(paths)
    return tuple((href, name) for href, name in PAGES if ("/" + href.removeprefix("./")) in present)


def page(
    *,
    title: str,
    scope: Scope | None,
    query: str,
    body: Sequence[str],
    nav: Sequence[tuple[str, str]] = PAGES[:4],
    current: str = "./",
    versions: Sequence[tuple[str, str]] = (),
) -> str:
    suffix = f"?{query}" if query else ""
    links = " ".join(
        f'<a href="{e(href + suffix)}"' + (' aria-current="page"' if href == current else "") + f">{e(name)}</a>"
        for href, name in nav
    )
    heading = "no runs yet" if scope is None else f"{scope.rubric_name} {scope.rubric_version}"
    last = "" if scope is None or scope.last_day is None else f", latest day with scores {scope.last_day}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>judgeflow: {e(title)}</title><script>{_THEME_SCRIPT}</script><style>{_STYLE}</style></head><body>",
            f'<nav aria-label="judgeflow pages">{links}{version_picker(scope, versions)}</nav>',
            "<main>",
            f"<h1>{e(title)}</h1>",
            f'<p class="scope">rubric {e(heading)}{e(last)}</p>',
            *body,
            "</main></body></html>",
        ]
    )


def version_picker(scope: Scope | None, versions: Sequence[tuple[str, str]]) -> str:
    """A GET form that reloads the page for another rubric version (``?scope=name/version``); a deep link
    keeps it in the URL. Hidden with fewer than two versions."""
    if len(versions) < 2:
        return ""
    chosen = None if scope is None else (scope.rubric_name, scope.rubric_version)
    options = "".join(
        f'<option value="{e(name)}/{e(version)}"'
        + (" selected" if (name, version) == chosen else "")
        + f">{e(name)} {e(version)}</option>"
        for name, version in versions
    )
    return (
        '<form method="get"><label for="scope-select">Rubric version</label>'
        f'<select id="scope-select" name="scope">{options}</select><button type="submit">Show</button></form>'
    )


def status_line(status: Status, *, query: str) -> str:
    """What, where, since when and against what, then where to look for why: the first thing on the page."""
    r, ref = status.regression, status.reference
    if r is None:
        overall = status.overall
        if overall is None:
            return '<section class="status" id="status"><strong>No comparisons yet.</strong></section>'
        figures = _means(overall)
        return (
            '<section class="status clear" id="status"><strong>No open regression.</strong> '
            f"Overall score {e(figures)} in run {e(status.run_key or '')}.</section>"
        )
    where = f"in {r.segment}" if r.segment else "over all responses"
    more = f" ({status.open_count - 1} more open below)" if status.open_count > 1 else ""
    since = f"open since {r.first_found:%Y-%m-%d}"
    if ref is not None and status.frozen is not None:
        figures = _against_reference(ref, status.frozen)
    elif ref is not None:
        figures = _means(ref)
    else:
        figures = f"announced at {num(r.announced_difference, '+.2f')}"
    why = _why_links(r.segment, query)
    return (
        '<section class="status regression" id="status" role="alert">'
        f"<strong>Regression {e(r.state)}: {e(r.metric)} {e(where)}</strong>, {e(since)}{e(more)}."
        f"<ul><li>what: <b>{e(r.metric)}</b> {e(figures)}</li>"
        f"<li>where: <b>{e(r.segment or 'all responses')}</b></li>"
        f"<li>why: {why}</li></ul></section>"
    )


def _means(c: MetricComparison) -> str:
    ci = "" if c.ci_low is None or c.ci_high is None else f", 95% CI [{c.ci_low:+.2f}, {c.ci_high:+.2f}]"
    return (
        f"{num(c.current_mean, '.2f')} (n={c.current_n}) against a baseline of {num(c.baseline_mean, '.2f')} "
        f"(n={c.baseline_n}): {num(c.difference, '+.2f')}{ci}"
    )


def _against_reference(c: MetricComparison, frozen: Reference) -> str:
    """Today against the level the regression dropped from (frozen when on-call was told)."""
    level = frozen.level
    diff = None if c.current_mean is None else c.current_mean - level.mean
    return (
        f"{num(c.current_mean, '.2f')} (n={c.current_n}) against its reference {level.mean:.2f} "
        f"(95% {level.low:.2f} to {level.high:.2f}, n={level.n}, the level before {frozen.end:%Y-%m-%d}): "
        f"{num(diff, '+.2f')}"
    )


def responses_link(segment: str | None, query: str) -> str:
    """``responses?<the page's query>&segment=...``: the Responses page for one segment, scope kept."""
    params = [p for p in query.split("&") if p and not p.startswith("segment=")]
    if segment:
        params.append("segment=" + urllib.parse.quote(segment, safe=""))
    return "responses" + ("?" + "&".join(params) if params else "")


def _why_links(segment: str | None, query: str) -> str:
    where = f" in {segment}" if segment else ""
    link = responses_link(segment, query)
    return f'the lowest-scoring responses{e(where)} below, and <a href="{e(link)}">all of this week\'s</a>'


def segment_picker(segment: str | None, choices: Sequence[str], *, query: str) -> str:
    """A GET form for the Responses page's segment; the other parameters of the page ride along hidden."""
    kept = urllib.parse.parse_qsl(query)
    hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in kept if k != "segment")
    options = '<option value="">all segments</option>' + "".join(
        f'<option value="{e(c)}"' + (" selected" if c == segment else "") + f">{e(c)}</option>" for c in choices
    )
    return (
        f'<form method="get" class="picker">{hidden}<label for="segment-select">Segment</label> '
        f'<select id="segment-select" name="segment">{options}</select> <button type="submit">Show</button></form>'
    )


def icon_svg(*, dark: bool = False) -> str:
    """The nav entry's icon: a pair of scales (a judge weighing quality), in Airflow's gray 700 for the
    light navigation bar, gray 200 for the dark one (an ``<img>`` cannot take the text colour)."""
    stroke = "oklch(0.915 0.01 253)" if dark else "oklch(0.35 0.045 251)"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{stroke}" '
        'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="M12 3v18"/><path d="M5 21h14"/>'
        '<path d="M4 7h16"/><path d="M4 7l-3 7a3 3 0 0 0 6 0z"/><path d="M20 7l-3 7a3 3 0 0 0 6 0z"/>'
        '<path d="M9 4.5 12 3l3 1.5"/></svg>'
    )


def scroll(content: str) -> str:
    """A wide table scrolls inside its box, so the page itself never scrolls sideways at 900 px."""
    return f'<div class="scroll" tabindex="0">{content}</div>'  # focusable: a keyboard can scroll it


def image(src: str, *, alt: str, query: str, present: bool) -> str:
    if not present:
        return '<p class="note">no data</p>'
    suffix = f"?{query}" if query else ""
    return f'<img class="chart" src="{e(src + suffix)}" alt="{e(alt)}">'


def note(text: str) -> str:
    return f'<p class="note">{e(text)}</p>'


def table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], *, table_id: str) -> str:
    """``rows`` are ``(css class, cells)``; cells are already HTML (escape data with :func:`cell`)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "\n".join(f'<tr class="{e(css)}">' + "".join(cells) + "</tr>" for css, cells in rows)
    return scroll(f'<table id="{e(table_id)}">\n<tr>{head}</tr>\n{body}\n</table>')


def cell(value: Any, *, text: bool = False) -> str:
    css = ' class="text"' if text else ""
    return f"<td{css}>{e(str(value))}</td>"


@dataclass(frozen=True)
class AcceptTarget:
    """Where the regressions table's *accept* forms post: the suite's DAG (whose editors may accept) and
    the rubric version shown."""

    dag_id: str
    rubric: str
    version: str


def regressions_table(rows: Sequence[Regression], *, query: str = "", accept: AcceptTarget | None = None) -> str:
    """Each regression links to its segment's lowest-scoring responses (deep link, scope kept); with
    ``accept``, an open one has a form to accept its level as the new normal (``judgeflow alerts accept``)."""
    if not rows:
        return note("no regressions found by recent runs")
    head = ["regression", "state", "first found", "last found", "latest difference", "announced at"]
    rendered = table(
        [*head, "accept as the new normal"] if accept else head,
        (
            (
                r.state,
                [
                    f'<td class="text"><a href="{e(responses_link(r.segment, query))}">{e(r.key)}</a></td>',
                    cell(r.state),
                    cell(f"{r.first_found:%Y-%m-%d}"),
                    cell(f"{r.last_found:%Y-%m-%d}"),
                    cell(num(r.latest_difference, "+.2f")),
                    cell(num(r.announced_difference, "+.2f")),
                    *([_accept_form(r, accept)] if accept else []),
                ],
            )
            for r in rows
        ),
        table_id="regressions",
    )
    return rendered + (f"<script>{_ACCEPT_SCRIPT}</script>" if accept else "")


def _accept_form(r: Regression, target: AcceptTarget) -> str:
    if r.state == "recovered":
        return '<td class="text"></td>'
    action = "alerts/accept?" + urllib.parse.urlencode({"dag_id": target.dag_id})
    return (
        f'<td class="text"><form class="accept" method="post" action="{e(action)}" data-rubric="{e(target.rubric)}" '
        f'data-version="{e(target.version)}" data-regression="{e(r.key)}">'
        f'<input name="reason" required minlength="3" placeholder="why this level is normal now" '
        f'aria-label="reason to accept {e(r.key)}"> <button type="submit">Accept</button></form></td>'
    )


_ACCEPT_SCRIPT = """
document.querySelectorAll("form.accept").forEach(function(f){f.addEventListener("submit",function(ev){
ev.preventDefault();var d=f.dataset,out=document.createElement("span");
fetch(f.getAttribute("action"),{method:"POST",credentials:"same-origin",headers:{"Content-Type":"application/json"},
body:JSON.stringify({rubric:d.rubric,version:d.version,regression:d.regression,reason:f.reason.value})})
.then(function(r){return r.json().then(function(j){out.textContent=r.ok?j.message:(r.status+": "+j.detail);
f.replaceWith(out)})})})});
"""
"""Posts the form as the JSON ``POST /alerts/accept`` takes, with the UI's session cookie; the answer
(the acceptance, or why not: 403 without edit rights on the DAG) replaces the form."""


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
    return scroll(comparison_table(rows, table_id="segments"))


def lowest_table(rows: Sequence[LowResponse], segment_names: Sequence[str], *, table_id: str = "lowest") -> str:
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
        table_id=table_id,
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
