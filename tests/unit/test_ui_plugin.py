"""judgeflow.ui.plugin: found by Airflow's entry point, light to import, mounted and in the navigation."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

from judgeflow.ui.plugin import APP_FACTORY, URL_PREFIX, JudgeflowViewPlugin, LazyApp


def test_the_entry_point_airflow_reads_names_the_plugin() -> None:
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "judgeflow"]

    assert entry.load() is JudgeflowViewPlugin


def test_importing_the_plugin_leaves_the_heavy_modules_alone() -> None:
    """Schedulers and workers load plugins too: the app, pandas and matplotlib wait for the first request."""
    heavy = ["fastapi", "matplotlib", "pandas", "judgeflow.ui.app", "judgeflow.warehouse", "judgeflow.charts"]
    code = f"import sys, judgeflow.ui.plugin; print([m for m in {heavy!r} if m in sys.modules])"

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


def test_the_app_is_mounted_and_the_view_is_a_top_level_nav_entry() -> None:
    (app,) = JudgeflowViewPlugin.fastapi_apps
    (view,) = JudgeflowViewPlugin.external_views

    assert app["url_prefix"] == URL_PREFIX and isinstance(app["app"], LazyApp)
    assert app["app"].factory == APP_FACTORY
    assert view["href"] == f"{URL_PREFIX}/" and view["destination"] == "nav" and view["nav_top_level"] is True
