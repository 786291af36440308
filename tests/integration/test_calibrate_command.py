"""``judgeflow calibrate`` finds the judge's connection as Airflow does, and never falls back to an emulator.

It once looked only at ``AIRFLOW_CONN_*`` and, finding nothing, quietly started the local emulator
and stored that calibration in the real warehouse, where the DAG's gate trusted it. These tests run
the real command in a subprocess against Airflow's metadata database.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from tests.support import ROOT
from tests.support.dag_runs import write_settings

CONN_ID = "judgeflow_calibrate_test_judge"
GOLDEN_ITEMS = sum(
    1 for line in (ROOT / "include" / "golden" / "helpfulness.jsonl").read_text(encoding="utf-8").splitlines() if line
)


def command_env() -> dict[str, str]:
    """This test session's Airflow (its metadata DB), without any AIRFLOW_CONN_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_") and k != "JUDGEFLOW_SETTINGS"}


def airflow(*args: str) -> subprocess.CompletedProcess[str]:
    binary = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run([binary, *args], env=command_env(), capture_output=True, text=True, check=False, timeout=120)


def calibrate(settings: Path, url: str) -> subprocess.CompletedProcess[str]:
    binary = str(Path(sys.executable).with_name("judgeflow"))
    return subprocess.run(
        [binary, "calibrate", "--settings", str(settings), "--url", url],
        env=command_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    return write_settings(
        tmp_path,
        connections={"anthropic": CONN_ID},
        calibration={"golden_dir": str(ROOT / "include" / "golden"), "bootstrap_resamples": 200},
    )


def test_a_connection_in_the_metadata_database_is_the_one_used(
    airflow_db: Path, settings: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    with EmulatorServer(EmulatorConfig(latency_median_s=0.002)) as emulator:
        added = airflow(
            "connections",
            "add",
            CONN_ID,
            "--conn-type",
            "anthropic",
            "--conn-password",
            "k",
            "--conn-host",
            emulator.url,
        )
        assert added.returncode == 0, added.stdout + added.stderr
        try:
            result = calibrate(settings, url)
            requests = emulator.stats()["requests_total"]
            endpoint = emulator.url.rstrip("/")
        finally:
            airflow("connections", "delete", CONN_ID)

    assert result.returncode == 0, result.stdout + result.stderr
    assert requests >= GOLDEN_ITEMS, "the golden set went to the connection's endpoint"
    assert "emulator" not in result.stdout.lower()
    engine = create_engine(url)
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT judge_endpoint, passed FROM judge_calibration_runs").all()
    engine.dispose()
    assert stored == [(endpoint, True)]


def test_no_connection_anywhere_is_an_error_not_an_emulator(airflow_db: Path, settings: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    result = calibrate(settings, url)

    assert result.returncode == 2, result.stdout + result.stderr
    assert CONN_ID in result.stderr and "not defined" in result.stderr
    assert "judgeflow-dev calibrate --emulator" in result.stderr, "the message says how to use the emulator on purpose"
    assert "judging" not in result.stdout, "nothing was judged"
    assert not (tmp_path / "warehouse.sqlite").exists(), "and nothing was stored"
