"""The review queue: people score what the judge scored, so the judge can be checked in production.

``GET /review`` lists, per rubric version, a seeded random sample of the recent scores (their labels
give an unbiased judge-vs-people figure), the lowest scores and the verdicts the noise sample found
unstable, each with a form: a score per criterion and a note. Under it: the judge against people
over time (quadratic-weighted kappa and Spearman with bootstrap intervals, on the random sample's
labels), the judge's day-by-day noise, and this week's length bias.

``POST /review/label`` stores a label in ``judge_human_labels`` under the reviewer's Airflow user
name. Who may label: a user who may edit the suite's DAG (Airflow's own permission), or one named in
``review.reviewers``; anyone else who may see the view gets 403. Self-contained (its own routes, HTML
and a nav link), so the rest of the view can change around it.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from judgeflow.errors import ConfigError
from judgeflow.quality.comparison_table import num
from judgeflow.quality.judge_quality import judge_vs_people, length_bias, length_bias_lines
from judgeflow.rubric import load_rubric
from judgeflow.storage.judge_quality import JudgeQualityStore, Label, QueueItem
from judgeflow.storage.view_reads import Reader, Scope, start_of
from judgeflow.ui import pages
from judgeflow.ui.pages import _interval as _ci

e = html.escape
QUEUES = ("random", "low", "unstable")


@dataclass(frozen=True, slots=True)
class Reviewer:
    """Who is asking, by Airflow's authentication, and whether they may label."""

    name: str
    may_label: bool


def nobody() -> Reviewer:
    """The reviewer of an app built without Airflow (the benchmark): may look, may not label."""
    return Reviewer("anonymous", False)


@dataclass(frozen=True, slots=True)
class Scale:
    criteria: tuple[str, ...]
    low: int
    high: int


def routes(app: FastAPI, reader: Callable[[], Reader], reviewer: Callable[..., Reviewer]) -> None:
    @app.get("/review", response_class=HTMLResponse)
    def review(request: Request, who: Reviewer = Depends(reviewer)) -> str:
        r, query = reader(), request.url.query
        scope = r.scope(request.query_params.get("rubric") or None, request.query_params.get("version") or None)
        body = [pages.note("no runs yet: nothing to review")] if scope is None else _body(r, scope, who, query)
        return pages.page(title="Review queue", scope=scope, query=query, body=body)

    @app.post("/review/label")
    async def label(request: Request, who: Reviewer = Depends(reviewer)) -> Response:
        if not who.may_label:
            return HTMLResponse(
                f"<p>{e(who.name)} may not label: labelling needs edit rights on the suite's DAG or a place in "
                "review.reviewers</p>",
                status_code=403,
            )
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
        r = reader()
        scope = r.scope(form.get("rubric") or None, form.get("version") or None)
        if scope is None:
            return HTMLResponse("<p>no such rubric version</p>", status_code=404)
        try:
            await run_in_threadpool(_save, r, scope, who, form)
        except ValueError as exc:
            return HTMLResponse(f"<p>{e(str(exc))}</p>", status_code=400)
        back = "../review?" + urlencode({"rubric": scope.rubric_name, "version": scope.rubric_version})
        return RedirectResponse(back, status_code=303)


def store_of(r: Reader) -> JudgeQualityStore:
    return JudgeQualityStore(r.warehouse, unstable_spread=r.settings.noise.unstable_spread)


def scale_of(r: Reader, scope: Scope) -> Scale:
    """The rubric's criteria and scale from its file; the criteria the judge scored when the file is
    not there (the view may run where the rubrics are not), on 1..5."""
    try:
        rubric = load_rubric(r.settings.rubric_dir, scope.rubric_name)
        return Scale(tuple(rubric.criterion_names), rubric.scale.min, rubric.scale.max)
    except ConfigError:
        c = r.warehouse.criterion_scores.c
        from sqlalchemy import select

        query = (
            select(c.criterion)
            .where(c.rubric_name == scope.rubric_name, c.rubric_version == scope.rubric_version)
            .distinct()
        )
        with r.warehouse.engine.connect() as conn:
            return Scale(tuple(sorted(conn.execute(query).scalars())), 1, 5)


def _save(r: Reader, scope: Scope, who: Reviewer, form: dict[str, str]) -> None:
    scale = scale_of(r, scope)
    scores = {}
    for criterion in scale.criteria:
        raw = form.get(f"score_{criterion}", "")
        if not raw.lstrip("-").isdigit() or not scale.low <= int(raw) <= scale.high:
            raise ValueError(f"{criterion}: a score from {scale.low} to {scale.high} is needed, got {raw!r}")
        scores[criterion] = int(raw)
    queue = form.get("queue", "")
    if queue not in QUEUES:
        raise ValueError(f"queue must be one of {', '.join(QUEUES)}, got {queue!r}")
    id_column = r.warehouse.source.c[r.warehouse.source_config.id_column]
    try:
        response_id = id_column.type.python_type(form.get("response_id", ""))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"response_id {form.get('response_id')!r} is not a {id_column.name}") from exc
    store_of(r).save_label(
        response_id=response_id,
        rubric_name=scope.rubric_name,
        rubric_version=scope.rubric_version,
        reviewer=who.name,
        queue=queue,
        scores=scores,
        note=form.get("note", "")[:4000],
        at=dt.datetime.now(dt.UTC),
    )


def _body(r: Reader, scope: Scope, who: Reviewer, query: str) -> list[str]:
    store, scale, cfg = store_of(r), scale_of(r, scope), r.settings.review
    last = scope.last_day or dt.datetime.now(dt.UTC).date()
    items = store.queue(
        rubric_name=scope.rubric_name,
        rubric_version=scope.rubric_version,
        since=start_of(last, cfg.days),
        random_items=cfg.random_items,
        low_items=cfg.low_items,
        unstable_items=cfg.unstable_items,
        seed=f"{scope.rubric_version}:{last}",
    )
    labels = store.labels_with_judge(rubric_name=scope.rubric_name, rubric_version=scope.rubric_version)
    lengths, scores = store.lengths_and_scores(
        rubric_name=scope.rubric_name,
        rubric_version=scope.rubric_version,
        start=start_of(last, 7),
        end=start_of(last, 0),
    )
    who_line = f"signed in as {who.name}" + ("" if who.may_label else ": you may look, not label")
    return [
        pages.note(who_line),
        "<h2>Judge against people</h2>",
        agreement_table(labels, scale),
        "<h2>Judge noise</h2>",
        noise_table(store.noise_days(rubric_name=scope.rubric_name, rubric_version=scope.rubric_version)),
        "<h2>Length and score, last 7 days</h2>",
        _pairs_table(length_bias_lines(length_bias(lengths, scores)), table_id="length-bias"),
        f"<h2>Queue ({len(items)})</h2>",
        *(queue_form(item, scale, scope, query, enabled=who.may_label) for item in items),
    ]


def agreement_table(labels: Sequence[Label], scale: Scale) -> str:
    """Per ISO week of labelling, the random sample's labels against the judge, criteria pooled;
    the last row is every random-sample label so far."""
    usable = [lb for lb in labels if lb.queue == "random"]
    if not usable:
        return pages.note("no labels from the random sample yet")
    weeks: dict[str, list[Label]] = {}
    for lb in usable:
        year, week, _ = lb.labelled_at.isocalendar()
        weeks.setdefault(f"{year}-W{week:02d}", []).append(lb)
    rows = [(week, group) for week, group in sorted(weeks.items())] + [("all", usable)]
    lines = []
    for name, group in rows:
        pairs = [(lb.scores[c], lb.judge_scores[c]) for lb in group for c in scale.criteria if c in lb.judge_scores]
        a = judge_vs_people([p for p, _ in pairs], [j for _, j in pairs], scale_min=scale.low, scale_max=scale.high)
        lines.append(
            (
                "",
                [
                    pages.cell(name),
                    pages.cell(len(group)),
                    pages.cell(_ci(a.kappa.value, a.kappa.low, a.kappa.high)),
                    pages.cell(_ci(a.spearman.value, a.spearman.low, a.spearman.high)),
                    pages.cell(_ci(a.mae.value, a.mae.low, a.mae.high)),
                ],
            )
        )
    headers = ["week labelled", "responses", "weighted κ [95% CI]", "Spearman [95% CI]", "MAE [95% CI]"]
    return pages.table(headers, lines, table_id="agreement")


def noise_table(days: Sequence[dict[str, Any]]) -> str:
    if not days:
        return pages.note("no noise sample yet (noise.rate is 0, or no run has asked twice)")
    lines = [
        (
            "",
            [
                pages.cell(f"{d['day']}"),
                pages.cell(d["responses"]),
                pages.cell(_ci(d["kappa"], d["kappa_low"], d["kappa_high"])),
                pages.cell(num(d["mean_abs_spread"], ".2f")),
                pages.cell(d["unstable"]),
            ],
        )
        for d in days
    ]
    headers = ["day", "asked twice", "test-retest κ [95% CI]", "mean |spread|", "unstable"]
    return pages.table(headers, lines, table_id="noise")


def queue_form(item: QueueItem, scale: Scale, scope: Scope, query: str, *, enabled: bool) -> str:
    """One response's form. Blind: the judge's scores are not shown and nothing is preselected, so a
    reviewer's label is their own reading (anchoring on the judge would inflate the agreement)."""
    disabled = "" if enabled else " disabled"
    selects = "".join(
        f'<label>{e(c)} <select name="score_{e(c)}" required{disabled}><option value="">-</option>'
        + "".join(f'<option value="{v}">{v}</option>' for v in range(scale.low, scale.high + 1))
        + "</select></label> "
        for c in scale.criteria
    )
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{e(str(v))}">'
        for k, v in (
            ("response_id", item.response_id),
            ("queue", item.queue),
            ("rubric", scope.rubric_name),
            ("version", scope.rubric_version),
        )
    )
    return (
        f'<form class="label {e(item.queue)}" method="post" action="review/label" '
        f'data-response="{e(str(item.response_id))}">'
        f"<fieldset><legend>response {e(str(item.response_id))} ({e(item.queue)}), {item.created_at:%Y-%m-%d}</legend>"
        f'<p class="text"><b>Q:</b> {e(item.question[:1000])}</p>'
        + (f'<p class="text"><b>Context:</b> {e(item.context[:1000])}</p>' if item.context else "")
        + f'<p class="text"><b>A:</b> {e(item.response[:2000])}</p>'
        f"{hidden}{selects}"
        f'<label>note <input type="text" name="note" size="60"{disabled}></label> '
        f'<button type="submit"{disabled}>Save label</button></fieldset></form>'
    )


def _pairs_table(pairs: Sequence[tuple[str, str]], *, table_id: str) -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in pairs)
    return f'<table id="{e(table_id)}">{rows}</table>'
