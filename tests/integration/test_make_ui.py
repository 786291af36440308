"""``judgeflow-dev ui`` (``make ui``): the api-server with the view on a demo folder, its login, its status.

A demo folder as ``make demo`` leaves it, before any DAG run (the source table only, so this test
stays quick): the command migrates the demo's Airflow database, starts the api-server with the
SimpleAuthManager login it prints, logs in with that password, reads the view's home page and stops.
What the demo's judged data then looks like in the view is ``test_ui_view.py``'s part.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from judgeflow_devkit.sample_data import generate_responses, seed_warehouse


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_make_ui_without_a_demo_says_to_run_it(tmp_path: Path) -> None:
    result = _ui(tmp_path / "nothing-here", port=_free_port())
    assert result.returncode != 0
    assert f"no demo warehouse at {tmp_path / 'nothing-here' / 'warehouse.sqlite'}: run `make demo` first" in (
        result.stderr
    )


def test_make_ui_prints_where_and_the_login_that_works(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")
    end = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    assert seed_warehouse(engine, generate_responses(count=20, end=end)) == 20
    engine.dispose()
    port = _free_port()

    result = _ui(tmp_path, port=port)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"open   http://localhost:{port}/plugin/judgeflow" in result.stdout
    login = re.search(r"login  admin / (\S+)", result.stdout)
    assert login is not None
    assert json.loads((tmp_path / "ui_passwords.json").read_text()) == {"admin": login.group(1)}
    assert "status: no runs yet: the view fills after the suite's first run" in result.stdout  # logged in, read


def _ui(workdir: Path, *, port: int) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "judgeflow-dev"), "ui", "--check", "--workdir", str(workdir)]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run(
        [*command, "--port", str(port)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
