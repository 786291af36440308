"""The Airflow plugin: mounts the view's FastAPI app on the api-server and adds it to the UI's navigation.

Registered through the ``airflow.plugins`` entry point in pyproject.toml (``plugins/.airflowignore``
hides the library from the plugin folder scan). Every Airflow process loads plugins, schedulers and
workers included, so this module imports nothing but the plugin base class: the app, FastAPI,
SQLAlchemy and matplotlib are imported on the first request, in the api-server only.
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from judgeflow.ui.links import URL_PREFIX

APP_FACTORY = "judgeflow.ui.app:create_app"
NAV_LABEL = "Quality"
"""One short word, like Airflow's own entries (Dags, Assets, Browse): the UI's nav column is narrow and
wraps or cuts a longer label under its icon."""


class LazyApp:
    """An ASGI app that builds the real one (``module:factory``) on its first request."""

    def __init__(self, factory: str) -> None:
        self.factory = factory
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:
            module, name = self.factory.split(":")
            self._app = getattr(importlib.import_module(module), name)()
        await self._app(scope, receive, send)


class JudgeflowViewPlugin(AirflowPlugin):
    """Quality at a glance: score trend, weekly distributions, regressions, segments, lowest scores,
    run health and rubric versions, read from the judgeflow warehouse."""

    name = "judgeflow"
    fastapi_apps = [{"app": LazyApp(APP_FACTORY), "url_prefix": URL_PREFIX, "name": "judgeflow"}]
    external_views = [
        {
            "name": NAV_LABEL,
            "href": f"{URL_PREFIX}/",
            "icon": f"{URL_PREFIX}/icon.svg",
            "icon_dark_mode": f"{URL_PREFIX}/icon.svg?mode=dark",
            "destination": "nav",
            "url_route": "judgeflow",
            "nav_top_level": True,
        }
    ]
