"""Test-wide set-up: a private Airflow home, no proxies, and the services the tiers need.

Airflow reads its configuration when first imported, so the environment is set here, before any
test module imports it. ``JUDGEFLOW_REQUIRE_SERVICES=1`` (set by ``.ci/run``) turns a missing
PostgreSQL or Redis into a failure instead of a skip.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.support import ROOT

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
        # dag.test() cannot finish a DAG with a deadline in Airflow 3.3.2 (judgeflow/run_deadline.py)
        "JUDGEFLOW_RUN_DEADLINE_HOURS": "off",
        # the suite check asks warehouses about tables at parse time; only tests of that check turn it on
        "JUDGEFLOW_SOURCE_CHECK_SECONDS": "0",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    """Tests talk to loopback only, and choose their own connections: drop the machine's."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(name, None)
    for name in list(os.environ):
        if name.startswith("AIRFLOW_CONN_") or name in _MACHINE_SETTINGS:
            os.environ.pop(name)


_MACHINE_SETTINGS = ("JUDGEFLOW_SETTINGS", "JUDGEFLOW_INCLUDE_DIR", "ANTHROPIC_API_KEY")


POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_ADDRESS = ("127.0.0.1", 6379)


def services_required() -> bool:
    return os.environ.get("JUDGEFLOW_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    """Skip, or fail when the run promised its services (``.ci/run`` sets JUDGEFLOW_REQUIRE_SERVICES=1)."""
    if services_required():
        pytest.fail(reason + "; JUDGEFLOW_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(reason)


def require_tcp(name: str, address: tuple[str, int]) -> None:
    """Skip (or fail, in CI) when ``name`` does not answer at ``address``."""
    try:
        socket.create_connection(address, timeout=2).close()
    except OSError as exc:
        service_missing(f"{name} not reachable at {address[0]}:{address[1]} ({exc})")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session (SQLite in a temp home)."""
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return _AIRFLOW_HOME


def anthropic_connection(url: str, key: str = "test-key") -> str:
    return json.dumps({"conn_type": "anthropic", "password": key, "host": url})


def sqlite_connection(path: Path) -> str:
    return json.dumps({"conn_type": "sqlite", "host": str(path)})


@pytest.fixture
def private_redis() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A throwaway redis-server this test may kill, so the shared one keeps running."""
    binary = shutil.which("redis-server")
    if binary is None:
        service_missing("redis-server is not installed")
    assert binary is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        else:
            service_missing(f"a private redis-server on port {port} did not start")
        client.close()
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


class _LogCollector(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records_of() -> Iterator[Callable[[str], list[logging.LogRecord]]]:
    """``records_of("judgeflow.tasks.pipeline")``: that logger's records, caught on the logger itself
    (Airflow may swap root handlers mid-test, so caplog can miss them)."""
    attached: list[tuple[logging.Logger, logging.Handler, int]] = []

    def attach(name: str) -> list[logging.LogRecord]:
        records: list[logging.LogRecord] = []
        logger, handler = logging.getLogger(name), _LogCollector(records)
        attached.append((logger, handler, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        return records

    yield attach
    for logger, handler, level in attached:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def log_records(records_of: Callable[[str], list[logging.LogRecord]]) -> list[logging.LogRecord]:
    """The judging engine's log records (the rate limiter, budget and the Redis client factory among them)."""
    return records_of("judgeflow.judging")
