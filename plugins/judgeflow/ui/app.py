"""The FastAPI app behind the view: HTML pages, their PNG charts and JSON endpoints for BI tools.

Mounted by :class:`judgeflow.ui.plugin.JudgeflowViewPlugin` under ``/judgeflow`` on Airflow's
api-server. Every route depends on the api-server's own authorization
(``requires_access_view(AccessView.WEBSITE)``: whoever may use the Airflow UI, by JWT in the
``Authorization`` header or the UI's ``_token`` cookie); without it a request gets 401, with a token
that may not see the UI 403. Only the warehouse is read, never Airflow's metadata database, so the
view works while the scheduler is down.

Routes are plain ``def``: FastAPI runs them in its thread pool, so a slow query never blocks the
api-server's event loop.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from judgeflow.errors import ConfigError, JudgeflowError
from judgeflow.quality import charts
from judgeflow.storage.view_reads import Reader, Scope, Status
from judgeflow.ui import pages, review
from judgeflow.ui.review import Reviewer, nobody

log = logging.getLogger(__name__)

WEEK_LABELS = ("last week", "this week")


def create_app() -> FastAPI:
    """The app the plugin mounts: the warehouse from the ``judge_warehouse`` connection, behind Airflow's auth.

    Accepting a regression changes what on-call is told, so it needs more than seeing the UI: edit
    rights (``PUT``) on the DAG named by the request's ``dag_id``, as Airflow's own API asks to clear
    or mark its runs."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag, requires_access_view

    def user_name(user: Any = Depends(get_user)) -> str:
        return str(user.get_name())

    reader = _LazyReader()
    return build_app(
        reader,
        dependencies=[Depends(requires_access_view(AccessView.WEBSITE))],
        reviewer=_airflow_reviewer(reader),
        editor=Editor(guard=[Depends(requires_access_dag(method="PUT"))], user=user_name, dag_id=_suite_dag_id),
    )


def _airflow_reviewer(reader: Callable[[], Reader]) -> Callable[..., Reviewer]:
    """The signed-in Airflow user, and whether they may label: edit rights on the suite's DAG (the
    auth manager decides), or a place in ``review.reviewers``."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import get_user

    def reviewer(user: Any = Depends(get_user)) -> Reviewer:
        settings = reader().settings
        name = str(user.get_name())
        if name in settings.review.reviewers:
            return Reviewer(name, True)
        details = DagDetails(id=_suite_dag_id())
        return Reviewer(name, bool(get_auth_manager().is_authorized_dag(method="PUT", details=details, user=user)))

    return reviewer


def _suite_dag_id() -> str:
    from judgeflow.config import default_settings_path
    from judgeflow.suite import load_suite

    return load_suite(default_settings_path()).dag_id


@dataclass(frozen=True)
class Editor:
    """What a changing route needs: its guard (dependencies) and who the caller is (a dependency giving a name)."""

    guard: Sequence[Any]
    user: Callable[..., str]
    dag_id: Callable[[], str] | None = None
    """The DAG the view's *accept* forms name (whose editors may accept); without it the forms are not shown."""


def build_app(
    reader: Callable[[], Reader],
    *,
    dependencies: Sequence[Any],
    reviewer: Callable[..., Reviewer] = nobody,
    editor: Editor | None = None,
) -> FastAPI:
    """The routes over any reader; ``dependencies`` guard every route (the benchmark passes none).
    ``reviewer`` says who is asking on the review page (nobody who may label, by default); the one
    route that changes what on-call is told, ``POST /alerts/accept``, exists only with an ``editor``."""
    app = FastAPI(title="judgeflow", dependencies=list(dependencies), docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(JudgeflowError)
    def _warehouse_trouble(request: Request, exc: JudgeflowError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    _pages(app, reader, editor)
    review.routes(app, reader, reviewer)
    _charts(app, reader)
    _api(app, reader)
    if editor is not None:
        _accept(app, reader, editor)
    return app


class AcceptRequest(BaseModel):
    """``judgeflow alerts accept`` from the view: the rubric, what dropped, why (the DAG is ``?dag_id=``)."""

    model_config = ConfigDict(extra="forbid")
    rubric: str
    regression: str
    reason: str = Field(min_length=3)
    version: str | None = None


def _accept(app: FastAPI, reader: Callable[[], Reader], editor: Editor) -> None:
    from judgeflow.storage.alert_commands import describe_acceptance, regression_name

    @app.post("/alerts/accept", dependencies=list(editor.guard))
    def accept(dag_id: str, body: AcceptRequest, user: str = Depends(editor.user)) -> JSONResponse:
        """Accept an open regression as the new normal, as the signed-in user (the DAG's editors only)."""
        try:
            done = reader().warehouse.alerts.accept(
                body.rubric,
                body.version,
                regression_name(body.regression),
                by=user,
                reason=body.reason,
                at=dt.datetime.now(dt.UTC),
            )
        except ConfigError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        return JSONResponse(
            jsonable_encoder({"dag_id": dag_id, "accepted": vars_of(done), "message": describe_acceptance(done)})
        )


def _accept_target(editor: Editor | None, scope: Scope) -> pages.AcceptTarget | None:
    """The *accept* forms' target, or none (no editor, or the suite's DAG cannot be named: the page still renders)."""
    if editor is None or editor.dag_id is None:
        return None
    try:
        dag_id = editor.dag_id()
    except JudgeflowError as exc:
        log.warning("judgeflow view: no accept forms, the suite's DAG cannot be named: %s", exc)
        return None
    return pages.AcceptTarget(dag_id, scope.rubric_name, scope.rubric_version)


def _scope(reader: Reader, request: Request) -> Scope | None:
    """The rubric version asked: ``?rubric=&version=`` (deep links) or the picker's ``?scope=name/version``."""
    params = request.query_params
    rubric, version = params.get("rubric") or None, params.get("version") or None
    if params.get("scope"):
        rubric, _, version = params["scope"].partition("/")
    return reader.scope(rubric or None, version or None)


def _pages(app: FastAPI, reader: Callable[[], Reader], editor: Editor | None = None) -> None:
    def render(r: Reader, request: Request, *, title: str, scope: Scope | None, body: list[str], current: str) -> str:
        nav = pages.nav_for(getattr(route, "path", "") for route in app.routes)
        return pages.page(
            title=title,
            scope=scope,
            query=request.url.query,
            body=body,
            nav=nav,
            current=current,
            versions=r.version_choices(),
        )

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> str:
        r, query = reader(), request.url.query
        scope = _scope(r, request)
        body = [pages.note("no runs yet: the view fills after the suite's first run")]
        if scope is not None:
            found = r.regressions(scope)
            status = r.status(scope, found)
            body = [pages.status_line(status, query=query), *_why(r, scope, status)]
            body += [
                "<h2>Score trend</h2>",
                pages.image(
                    "charts/trend.png", alt="daily mean per criterion", query=query, present=scope.last_day is not None
                ),
                "<h2>This week and last week</h2>",
                pages.image(
                    "charts/distributions.png",
                    alt="score distributions, last week vs this week",
                    query=query,
                    present=scope.last_day is not None,
                ),
                "<h2>Regressions</h2>",
                pages.regressions_table(found, query=query, accept=_accept_target(editor, scope)),
                "<h2>Run health</h2>",
                pages.health_table(r.run_health(scope)),
            ]
        return render(r, request, title="Quality at a glance", scope=scope, body=body, current="./")

    @app.get("/segments", response_class=HTMLResponse)
    def segments(request: Request) -> str:
        r, query = reader(), request.url.query
        scope = _scope(r, request)
        run_key, rows = r.segment_rows(scope) if scope else (None, [])
        body = [
            pages.note(f"comparisons of run {run_key}" if run_key else "no comparisons yet"),
            pages.image(
                "charts/segments.png",
                alt="per-segment differences with 95% CI",
                query=query,
                present=any(row.difference is not None for row in rows),
            ),
            pages.segments_table(rows),
        ]
        return render(r, request, title="Per-segment comparisons", scope=scope, body=body, current="segments")

    @app.get("/responses", response_class=HTMLResponse)
    def responses(request: Request) -> HTMLResponse:
        r = reader()
        scope = _scope(r, request)
        segment = request.query_params.get("segment") or None
        try:
            rows = r.lowest_responses(scope, segment=segment) if scope else []
        except ValueError as exc:
            return HTMLResponse(pages.note(str(exc)), status_code=400)
        choices = sorted({row.segment for row in r.segment_rows(scope)[1] if row.segment}) if scope else []
        title = "Lowest-scoring responses this week" + (f" in {segment}" if segment else "")
        body = [
            pages.segment_picker(segment, choices, query=request.url.query),
            pages.lowest_table(rows, r.warehouse.segment_names()),
        ]
        return HTMLResponse(render(r, request, title=title, scope=scope, body=body, current="responses"))

    @app.get("/rubrics", response_class=HTMLResponse)
    def rubrics(request: Request) -> str:
        r = reader()
        body = [pages.rubrics_table(r.rubric_versions())]
        return render(r, request, title="Rubric versions", scope=_scope(r, request), body=body, current="rubrics")

    @app.get("/icon.svg")
    def icon(request: Request) -> Response:
        svg = pages.icon_svg(dark=request.query_params.get("mode") == "dark")
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


def _why(r: Reader, scope: Scope, status: Status) -> list[str]:
    """Under the status line, the first few responses that explain it: the lowest-scoring of the
    regression's segment since it was first found (within the week), with the judge's rationale."""
    regression = status.regression
    if regression is None:
        return []
    where = f" in {regression.segment}" if regression.segment else ""
    where += f" since {regression.first_found:%Y-%m-%d}"
    heading = f"<h2>Why: the lowest-scoring responses{pages.e(where)}</h2>"
    try:
        rows = r.lowest_responses(scope, segment=regression.segment, limit=3, since=regression.first_found)
    except ValueError as exc:  # a segment column the settings no longer name: say so, keep the page
        return [heading, pages.note(str(exc))]
    return [heading, pages.lowest_table(rows, [], table_id="why")]


class ChartCache:
    """Rendered PNGs keyed by the exact data they draw, so a chart is drawn once per change of its data.

    The data is read on every request (a few milliseconds); only matplotlib's drawing, 100-200 ms
    per chart, is skipped when nothing changed, which is every view between two daily runs."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._pngs: OrderedDict[str, bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, data: Any, draw: Callable[[], bytes | None]) -> bytes | None:
        key = name + ":" + hashlib.sha256(repr(data).encode()).hexdigest()
        with self._lock:
            if key in self._pngs:
                self._pngs.move_to_end(key)
                return self._pngs[key]
        png = draw()
        with self._lock:
            self._pngs[key] = png
            while len(self._pngs) > self.size:
                self._pngs.popitem(last=False)
        return png

    def clear(self) -> None:
        with self._lock:
            self._pngs.clear()


def _charts(app: FastAPI, reader: Callable[[], Reader]) -> None:
    cache = app.state.chart_cache = ChartCache()

    def png(data: bytes | None) -> Response:
        if data is None:
            return Response("no data", status_code=404, media_type="text/plain")
        return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})

    @app.get("/charts/trend.png")
    def trend_chart(request: Request) -> Response:
        r = reader()
        scope = _scope(r, request)
        points = r.trend(scope) if scope else []
        return png(cache.get("trend", points, lambda: charts.trend_png(points)))

    @app.get("/charts/distributions.png")
    def distributions_chart(request: Request) -> Response:
        r = reader()
        scope = _scope(r, request)
        counts = r.weekly_counts(scope) if scope else {}
        key = [(m, [(c.values.tolist(), c.counts.tolist()) for c in w]) for m, w in counts.items()]
        return png(cache.get("distributions", key, lambda: charts.distributions_png(counts, labels=WEEK_LABELS)))

    @app.get("/charts/segments.png")
    def segments_chart(request: Request) -> Response:
        r = reader()
        scope = _scope(r, request)
        rows = r.segment_rows(scope)[1] if scope else []
        return png(cache.get("segments", [row.to_json() for row in rows], lambda: charts.segments_png(rows)))


def _api(app: FastAPI, reader: Callable[[], Reader]) -> None:
    def answer(request: Request, build: Callable[[Reader, Scope], Any]) -> JSONResponse:
        r = reader()
        scope = _scope(r, request)
        data = None if scope is None else build(r, scope)
        return JSONResponse(jsonable_encoder({"scope": scope, "data": data}))

    @app.get("/api/trend")
    def api_trend(request: Request) -> JSONResponse:
        return answer(request, lambda r, s: [p._asdict() for p in r.trend(s)])

    @app.get("/api/distributions")
    def api_distributions(request: Request) -> JSONResponse:
        def build(r: Reader, s: Scope) -> Any:
            week = s.this_week
            return {
                "this_week": None if week is None else {"start": week[0], "end": week[1]},
                "metrics": {
                    metric: {label.replace(" ", "_"): _counts(c) for label, c in zip(WEEK_LABELS, w, strict=True)}
                    for metric, w in r.weekly_counts(s).items()
                },
            }

        return answer(request, build)

    @app.get("/api/regressions")
    def api_regressions(request: Request) -> JSONResponse:
        return answer(request, lambda r, s: r.regressions(s))

    @app.get("/api/segments")
    def api_segments(request: Request) -> JSONResponse:
        def build(r: Reader, s: Scope) -> Any:
            run_key, rows = r.segment_rows(s)
            return {"run_key": run_key, "comparisons": [row.to_json() for row in rows]}

        return answer(request, build)

    @app.get("/api/responses/lowest")
    def api_lowest(request: Request) -> JSONResponse:
        return answer(request, lambda r, s: r.lowest_responses(s))

    @app.get("/api/health")
    def api_health(request: Request) -> JSONResponse:
        return answer(
            request,
            lambda r, s: [
                {**vars_of(h), "coverage": h.coverage, "cache_hit_rate": h.cache_hit_rate} for h in r.run_health(s)
            ],
        )

    @app.get("/api/rubrics")
    def api_rubrics(request: Request) -> JSONResponse:
        return answer(request, lambda r, s: r.rubric_versions())


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


def _counts(counts: charts.ValueCounts) -> list[dict[str, float]]:
    return [{"value": float(v), "n": int(n)} for v, n in zip(counts.values, counts.counts, strict=True)]


class _LazyReader:
    """The production reader, built on first use: settings from :func:`~judgeflow.config.default_settings_path`,
    the warehouse from the ``judge_warehouse`` connection.
    A failed build (warehouse down) is retried on the next request."""

    def __init__(self) -> None:
        self._reader: Reader | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Reader:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    self._reader = _production_reader()
        return self._reader


def _production_reader() -> Reader:
    from judgeflow.config import default_settings_path
    from judgeflow.connections import server_connection, warehouse_target
    from judgeflow.storage.warehouse import Warehouse
    from judgeflow.suite import load_suite

    settings = load_suite(default_settings_path()).settings  # a suite file is read over its defaults
    url = warehouse_target(
        settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path, lookup=server_connection
    )
    return Reader(Warehouse.from_url(url, settings.source), settings)
