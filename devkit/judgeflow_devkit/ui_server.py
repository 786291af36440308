"""``judgeflow-dev ui`` (``make ui``): Airflow's api-server with the judgeflow view, on the demo's data.

After ``make demo`` a new user runs ``make ui`` and opens the printed address: Airflow's own login
(SimpleAuthManager, one admin whose password is generated once and kept in the demo's folder), then
the **Quality** entry of the navigation. The api-server uses the demo's Airflow home and metadata
database and its SQLite warehouse (the ``support`` suite, which has a quality drop in ``shipping``), so
nothing else has to be set up. ``--check`` starts it, logs in with the password, reads the view's
home page, prints its status line and stops: what the test of this command runs.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from judgeflow_devkit import PROJECT_ROOT

USER = "admin"
SUITE = "support"
"""The demo suite the view shows: the support bot's answers, with the planted drop in ``shipping``."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev ui", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".judgeflow" / "demo", help="make demo's folder")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--check", action="store_true", help="start, read the view once, print its status, stop")
    args = parser.parse_args(argv)
    return serve(workdir=args.workdir, port=args.port, check=args.check)


def serve(*, workdir: Path, port: int, check: bool) -> int:
    from judgeflow_devkit.demo import airflow_env

    warehouse = workdir / "warehouse.sqlite"
    if not warehouse.exists():
        raise SystemExit(f"no demo warehouse at {warehouse}: run `make demo` first (it seeds and judges the data)")
    password = _password(workdir / "ui_passwords.json")
    env = airflow_env(workdir / "airflow", warehouse)
    base = f"http://localhost:{port}"
    env.update(simple_auth_env(user=USER, passwords=workdir / "ui_passwords.json", base_url=base))
    env["JUDGEFLOW_SETTINGS"] = str(PROJECT_ROOT / "include" / "suites" / f"{SUITE}.yaml")
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, check=True)
    log_path = workdir / "api-server.log"
    print(f"starting Airflow's api-server with the judgeflow view on port {port} (log: {log_path})", flush=True)
    server = start_api_server(env, host="0.0.0.0", port=port, log_path=log_path)
    try:
        wait_until_up(base, server, log_path)
        print(f"\n  open   {base}/plugin/judgeflow   (the 'Quality' entry in Airflow's navigation)")
        print(f"  login  {USER} / {password}")
        print(f"  data   the demo's '{SUITE}' suite in {warehouse}\n", flush=True)
        if check:
            print("status: " + _status_line(base, password))
            return 0
        print("Ctrl-C stops it.", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def _password(path: Path) -> str:
    """The admin's password: generated on the first run, then the same on every run (the file is Airflow's
    SimpleAuthManager passwords file, ``{"user": "password"}``)."""
    if path.exists():
        known = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(known, dict) and isinstance(known.get(USER), str):
            return str(known[USER])
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({USER: password}), encoding="utf-8")
    return password


def simple_auth_env(
    *, user: str = "", passwords: Path, base_url: str, roles: dict[str, str] | None = None
) -> dict[str, str]:
    """Airflow's SimpleAuthManager with one admin ``user`` (or the users of ``roles``, name → role) whose
    passwords are in ``passwords`` (not ``all_admins``: that mode lets every request in, so nothing could
    be refused)."""
    users = roles or {user: "admin"}
    return {
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{name}:{role}" for name, role in users.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__BASE_URL": base_url,
    }


def start_api_server(env: dict[str, str], *, host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``airflow api-server`` (one worker) in the background, its output in ``log_path``."""
    airflow = str(Path(sys.executable).parent / "airflow")
    with log_path.open("w") as log:
        return subprocess.Popen(
            [airflow, "api-server", "--host", host, "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_up(base: str, server: subprocess.Popen[bytes], log_path: Path, *, timeout_s: float = 180) -> None:
    """Until the api-server answers its health check; raises naming the log when it stops or never answers."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the api-server stopped (exit {server.returncode}); see {log_path}")
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the api-server did not answer at {base} in {timeout_s:.0f} s; see {log_path}")


def _status_line(base: str, password: str) -> str:
    """Log in as the user would (``POST /auth/token``) and read the view's home page: its status line as text."""
    import httpx

    token = httpx.post(f"{base}/auth/token", json={"username": USER, "password": password}, timeout=30)
    token.raise_for_status()
    page = httpx.get(
        f"{base}/judgeflow/", headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=60
    )
    page.raise_for_status()
    found = re.search(r'<section class="status[^"]*" id="status"[^>]*>(.*?)</section>', page.text, re.S)
    found = found or re.search(r'<p class="note">(.*?)</p>', page.text, re.S)  # before the first run: its note
    if found is None:
        raise SystemExit(f"the view's home page has no status line:\n{page.text[:2000]}")
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).strip()


if __name__ == "__main__":
    raise SystemExit(main())
