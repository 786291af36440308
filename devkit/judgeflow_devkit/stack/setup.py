"""The stack's set-up: ``judgeflow deploy init``, the command compose's ``airflow-init`` runs, run twice.

The first run migrates the fresh metadata database and creates the pool, the four connections (the
judge pointed at the emulator because the run asks for it by name, as a compose trial does in
``.env``), judgeflow's warehouse role, grants and tables. The second must change nothing: its own
report says so, and :func:`snapshot` checks it independently, from the databases (connection rows
with their ciphertexts, which any rewrite would change; pools; the Alembic revision; the role's
grants and the warehouse's tables).

:func:`check_api_health` runs compose's api-server healthcheck command against the stack's
api-server, so that command is proven too.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import create_engine, text

from judgeflow_devkit import PROJECT_ROOT

SUMMARY = re.compile(r"^judgeflow deploy init: (\d+) changed, (\d+) unchanged, (\d+) problems$", re.MULTILINE)


@dataclass(frozen=True)
class InitRun:
    returncode: int
    output: str
    changed: int
    problems: int

    @property
    def summary(self) -> str:
        match = SUMMARY.search(self.output)
        return match.group(0) if match else f"no summary line (exit {self.returncode})"


def run_init(command: list[str], env: dict[str, str]) -> InitRun:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)
    match = SUMMARY.search(result.stdout)
    if match is None:
        raise RuntimeError(
            f"judgeflow deploy init printed no summary (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    return InitRun(result.returncode, result.stdout, int(match.group(1)), int(match.group(3)))


def snapshot(metadata_url: str, warehouse_url: str, role: str) -> dict[str, Any]:
    """What init may change, read from the databases themselves."""
    found: dict[str, Any] = {}
    engine = create_engine(metadata_url)
    try:
        with engine.connect() as conn:
            found["connections"] = [tuple(r) for r in conn.execute(text("SELECT * FROM connection ORDER BY conn_id"))]
            found["pools"] = [tuple(r) for r in conn.execute(text("SELECT pool, slots, description FROM slot_pool"))]
            found["revision"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    engine = create_engine(warehouse_url)
    try:
        with engine.connect() as conn:
            found["tables"] = sorted(
                r[0] for r in conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            )
            found["grants"] = sorted(
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT table_name, privilege_type FROM information_schema.role_table_grants WHERE grantee = :r"
                    ),
                    {"r": role},
                )
            )
            found["role"] = conn.execute(
                text("SELECT rolname, rolsuper, rolcanlogin, rolpassword FROM pg_authid WHERE rolname = :r"),
                {"r": role},
            ).all()
    finally:
        engine.dispose()
    return found


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [key for key in before if before[key] != after.get(key)]


def check_api_health(api_port: int) -> tuple[bool, str]:
    """docker-compose.yaml's api-server healthcheck, run against this stack's api-server."""
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yaml").read_text(encoding="utf-8"))
    test = compose["services"]["airflow-apiserver"]["healthcheck"]["test"]
    if test[:3] != ["CMD", "python", "-c"]:
        return False, f"the api-server healthcheck is not a python -c command: {test}"
    code = test[3].replace("localhost:8080", f"127.0.0.1:{api_port}")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=30)
    return result.returncode == 0, result.stderr[-500:]
