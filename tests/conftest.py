"""Test-wide set-up: a private Airflow home, no proxies, and the services the tiers need.

Airflow reads its configuration when first imported, so the environment is set here, before any
test module imports it. ``JUDGEFLOW_REQUIRE_SERVICES=1`` (set by ``.ci/run``) turns a missing
PostgreSQL or Redis into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Worker processes that tests spawn import this module again: they keep the same Airflow home.
_AIRFLOW_HOME = Path(
    os.environ.get("JUDGEFLOW_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="judgeflow-test-airflow-")
)
os.environ.update(
    {
        "JUDGEFLOW_TEST_AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    """Tests talk to loopback only, and choose their own connections: drop the machine's."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)
    for name in list(os.environ):
        if name.startswith("AIRFLOW_CONN_") or name in ("JUDGEFLOW_SETTINGS", "ANTHROPIC_API_KEY"):
            os.environ.pop(name)


POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_ADDRESS = ("127.0.0.1", 6379)


def services_required() -> bool:
    return os.environ.get("JUDGEFLOW_REQUIRE_SERVICES") == "1"


def require_tcp(name: str, address: tuple[str, int]) -> None:
    """Skip (or fail, in CI) when ``name`` does not answer at ``address``."""
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as exc:
        message = f"{name} not reachable at {address[0]}:{address[1]} ({exc})"
        if services_required():
            pytest.fail(message + "; JUDGEFLOW_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session (SQLite in a temp home)."""
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return _AIRFLOW_HOME


@pytest.fixture
def emulator() -> Iterator[object]:
    from judgeflow.emulator import EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(latency_median_s=0.01)) as server:
        yield server


def anthropic_connection(url: str, key: str = "test-key") -> str:
    return json.dumps({"conn_type": "anthropic", "password": key, "host": url})


def sqlite_connection(path: Path) -> str:
    return json.dumps({"conn_type": "sqlite", "host": str(path)})
