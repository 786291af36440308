"""The few calls of Airflow's REST API v2 the stack run makes, with a JWT from ``/auth/token``.

The simple auth manager issues the token for a user of ``simple_auth_manager_users`` whose password
is in ``simple_auth_manager_passwords_file``; every other call sends it as a bearer token.
"""

from __future__ import annotations

import time
from typing import Any

import httpx


class AirflowRest:
    """A logged-in client of one api-server."""

    def __init__(self, base_url: str, *, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._client = httpx.Client(base_url=self.base_url, timeout=30.0, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def wait_until_up(self, *, timeout_s: float) -> None:
        """Wait for the api-server to answer, then log in."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self._client.get("/api/v2/version").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the api-server at {self.base_url} did not answer in {timeout_s:.0f} s")
            time.sleep(0.5)
        response = self._client.post("/auth/token", json=self._credentials)
        response.raise_for_status()
        self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def get(self, path: str, **params: Any) -> Any:
        response = self._client.get(f"/api/v2{path}", params=params)
        response.raise_for_status()
        return response.json()

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as the API knows it, or None until the dag-processor has serialized it."""
        response = self._client.get(f"/api/v2/dags/{dag_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.get("/importErrors")["import_errors"])

    def trigger(self, dag_id: str, *, logical_date: str, conf: dict[str, Any]) -> str:
        """Create a manual run; returns its run id."""
        body = {"logical_date": logical_date, "conf": conf}
        response = self._client.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))

    def dag_runs(self, dag_id: str, *, run_type: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", run_type=run_type, limit=100)["dag_runs"])

    def asset_id(self, uri: str) -> int | None:
        """The id of the Asset with this URI, once a DAG that names it was parsed."""
        found = [a for a in self.get("/assets", uri_pattern=uri, limit=100)["assets"] if a["uri"] == uri]
        return int(found[0]["id"]) if found else None

    def create_asset_event(self, asset_id: int, *, extra: dict[str, Any]) -> None:
        """What the application's log load does when it has loaded: an event on its Asset."""
        response = self._client.post("/api/v2/assets/events", json={"asset_id": asset_id, "extra": extra})
        response.raise_for_status()

    def asset_events(self, asset_id: int) -> list[dict[str, Any]]:
        return list(self.get("/assets/events", asset_id=asset_id, limit=100)["asset_events"])

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The Asset events that triggered a run."""
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"])

    def task_instances(self, dag_id: str, run_id: str, *, task_id: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 1000}
        if task_id is not None:
            params["task_id"] = task_id
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", **params)["task_instances"])
