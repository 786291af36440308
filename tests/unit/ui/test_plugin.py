"""judgeflow.ui.plugin: found by Airflow's entry point, light to import, mounted and in the navigation."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from judgeflow.ui.plugin import APP_FACTORY, JudgeflowViewPlugin, LazyApp


def test_the_entry_point_airflow_reads_names_the_plugin() -> None:
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "judgeflow"]

    assert entry.load() is JudgeflowViewPlugin


def test_importing_the_plugin_leaves_the_heavy_modules_alone() -> None:
    """Schedulers and workers load plugins too: the app, pandas and matplotlib wait for the first request."""
    heavy = [
        "fastapi",
        "matplotlib",
        "pandas",
        "judgeflow.ui.app",
        "judgeflow.storage.warehouse",
        "judgeflow.quality.charts",
    ]
    code = f"import sys, judgeflow.ui.plugin; print([m for m in {heavy!r} if m in sys.modules])"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_the_view_is_a_top_level_nav_entry_pointing_at_the_mounted_app() -> None:
    (app,) = JudgeflowViewPlugin.fastapi_apps
    (view,) = JudgeflowViewPlugin.external_views

    assert isinstance(app["app"], LazyApp) and view["href"] == f"{app['url_prefix']}/" == "/judgeflow/"
    assert view["destination"] == "nav" and view["nav_top_level"] is True
    assert view["name"] == "Quality" and view["icon"] == "/judgeflow/icon.svg"
    assert view["icon_dark_mode"] == "/judgeflow/icon.svg?mode=dark"


def test_the_factory_builds_the_guarded_app_with_every_route_on_first_request() -> None:
    """What the api-server does on the first request to /judgeflow: the factory named by the plugin
    is imported and called, and the app it returns refuses a request without a token."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    lazy = LazyApp(APP_FACTORY)
    assert lazy._app is None  # nothing built at import

    refused = TestClient(lazy).get("/api/trend")

    assert refused.status_code == 401
    assert isinstance(lazy._app, FastAPI)
    routes = {getattr(route, "path", None) for route in lazy._app.routes}
    assert routes == {
        "/",
        "/segments",
        "/responses",
        "/rubrics",
        "/icon.svg",
        "/review",
        "/review/label",
        "/charts/trend.png",
        "/charts/distributions.png",
        "/charts/segments.png",
        "/api/trend",
        "/api/distributions",
        "/api/regressions",
        "/api/segments",
        "/api/responses/lowest",
        "/api/health",
        "/api/rubrics",
        "/alerts/accept",
    }
    accepting = TestClient(lazy).post("/alerts/accept", params={"dag_id": "x"}, json={})
    assert accepting.status_code == 401, "the one changing route is guarded too"


def test_no_schema_or_docs_route_answers_without_authentication() -> None:
    """FastAPI serves ``/openapi.json`` outside the app's dependencies; the view turns it (and the docs)
    off, so nothing under /judgeflow answers without Airflow's token."""
    from fastapi.testclient import TestClient

    client = TestClient(LazyApp(APP_FACTORY))
    for route in ("/openapi.json", "/docs", "/redoc"):
        assert client.get(route).status_code == 404, route
