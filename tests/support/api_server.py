"""``airflow api-server`` with the judgeflow plugin, for the view's browser tests.

SimpleAuthManager with named users and passwords (not ``all_admins``, which signs every request in,
so nothing could be refused), the warehouse connection in Airflow's database as an admin would add it,
and the settings file the view reads (``JUDGEFLOW_SETTINGS``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def api_server(
    folder: Path, *, users: dict[str, tuple[str, str]], settings: Path, warehouse_conn: str
) -> Iterator[str]:
    """Serve until the block ends; ``users`` maps a name to (role, password). Yields the base URL."""
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({name: pw for name, (_, pw) in users.items()}), encoding="utf-8")
    port = free_port()
    airflow = str(Path(sys.executable).parent / "airflow")
    added = subprocess.run(
        [airflow, "connections", "add", "judge_warehouse", "--conn-json", warehouse_conn],
        capture_output=True,
        text=True,
        check=False,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    env = {
        **os.environ,
        "JUDGEFLOW_SETTINGS": str(settings),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{role}" for n, (role, _) in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": "judgeflow-review-test-secret-0123456789abcdef",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    log_path = folder / "api-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert server.poll() is None, log_path.read_text()[-4000:]
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("api-server did not answer in 120 s:\n" + log_path.read_text()[-4000:])
        yield base
    finally:
        subprocess.run([airflow, "connections", "delete", "judge_warehouse"], capture_output=True, check=False)
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def token(base: str, user: str, password: str) -> str:
    response = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])
