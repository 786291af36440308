"""``airflow api-server`` with the judgeflow plugin, for the view's and the review queue's browser tests.

SimpleAuthManager with named users and passwords (not ``all_admins``, which signs every request in,
so nothing could be refused), the warehouse connection in Airflow's database as an admin would add it
(the api-server must find it outside any task), and the settings file the view reads
(``JUDGEFLOW_SETTINGS``). Started and awaited the way ``make ui`` does it (``judgeflow_devkit.ui_server``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from judgeflow_devkit.ui_server import simple_auth_env, start_api_server, wait_until_up


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
    base = f"http://127.0.0.1:{port}"
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
        **simple_auth_env(passwords=passwords, base_url=base, roles={n: role for n, (role, _) in users.items()}),
        "JUDGEFLOW_SETTINGS": str(settings),
        "AIRFLOW__API_AUTH__JWT_SECRET": "judgeflow-test-secret-0123456789abcdef",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    log_path = folder / "api-server.log"
    server = start_api_server(env, host="127.0.0.1", port=port, log_path=log_path)
    try:
        try:
            wait_until_up(base, server, log_path, timeout_s=120)
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n" + log_path.read_text()[-4000:])
        yield base
    finally:
        subprocess.run([airflow, "connections", "delete", "judge_warehouse"], capture_output=True, check=False)
        server.terminate()
        try:
            server.wait(timeout=5)  # uvicorn drains connections for up to 20 s; nothing here needs it
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def token(base: str, user: str, password: str) -> str:
    response = httpx.post(f"{base}/auth/token", json={"username": user, "password": password}, timeout=10)
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])
