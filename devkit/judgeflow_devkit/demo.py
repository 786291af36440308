"""``judgeflow-dev demo`` (``make demo``): the whole pipeline on a fresh machine, in a minute or two.

Seeds an embedded SQLite warehouse with 8 days of each shipped suite's application data: the
support bot's answers (a table, with a quality drop in one topic over the last three days) and the search
assistant's JSON log events. Starts the Messages API emulator (unless ``ANTHROPIC_API_KEY`` is
set), runs each suite's DAG for one day with ``airflow dags test`` and prints what each stored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from judgeflow_devkit import PROJECT_ROOT

SUITES = ("support", "search_assistant")
"""The suites ``include/suites/`` ships; each has its DAG, ``llm_judge__<suite>``."""


def run_demo(*, workdir: Path, per_day: int) -> int:
    """Everything the README's first command promises, on a fresh folder each time."""
    from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
    from judgeflow_devkit.sample_data import (
        generate_responses,
        generate_search_events,
        seed_search_events,
        seed_warehouse,
    )

    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = today - dt.timedelta(days=1)
    warehouse = workdir / "warehouse.sqlite"
    if warehouse.exists():
        warehouse.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{warehouse}")
    # The drop began three days ago: a topic of 12 a day is compared over the days it needs to hold
    # alerts.min_samples (30) scores, so a drop of one day would be a third of its window.
    since = today - dt.timedelta(days=3)
    baseline = generate_responses(count=5 * per_day, end=since, days=5, seed=1)
    current = generate_responses(
        count=3 * per_day, end=today, days=3, seed=2, first_id=5 * per_day + 1, low_quality_topic="shipping"
    )
    seeded = seed_warehouse(engine, baseline) + seed_warehouse(engine, current)
    print(
        f"seeded {seeded} support answers (8 days, a quality drop in 'shipping' since {since:%Y-%m-%d}, "
        f"judged on {day:%Y-%m-%d}) into {warehouse}"
    )
    events = seed_search_events(engine, generate_search_events(count=8 * per_day, end=today, days=8, seed=3))
    print(f"seeded {events} search assistant answers (8 days, JSON events in search_events)")

    env = airflow_env(workdir / "airflow", warehouse)
    emulator = None
    if os.environ.get("ANTHROPIC_API_KEY"):
        env["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "password": os.environ["ANTHROPIC_API_KEY"]}
        )
        print("ANTHROPIC_API_KEY is set: judging with the real Anthropic API")
    else:
        emulator = EmulatorServer(EmulatorConfig(latency_median_s=0.05, latency_sigma=0.5)).start()
        env["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
            {"conn_type": "anthropic", "password": "demo-key", "host": emulator.url}
        )
        print(f"no ANTHROPIC_API_KEY: judging with the local Messages API emulator at {emulator.url}")
    try:
        airflow = shutil.which("airflow", path=str(Path(sys.executable).parent)) or "airflow"
        _run([airflow, "db", "migrate"], env, quiet=True)
        codes = {suite: _dags_test(airflow, env, suite, today, workdir) for suite in SUITES}
    finally:
        if emulator is not None:
            emulator.stop()
    from judgeflow_devkit.demo_report import print_report

    failed = {suite: code for suite, code in codes.items() if code != 0}
    for suite, code in failed.items():
        print(f"the {suite} DAG run failed (exit {code}); see {workdir / f'dag_test_{suite}.log'}", file=sys.stderr)
    shown = print_report(engine, warehouse=warehouse, suites=SUITES, logs=workdir)
    print("\nSee it in Airflow's UI: `make ui` starts the api-server with the judgeflow view on this data and prints")
    print("where to open it and the login (judgeflow-dev ui; --port to change 8080).")
    return next(iter(failed.values()), shown)


def _dags_test(airflow: str, env: dict[str, str], suite: str, today: dt.datetime, workdir: Path) -> int:
    """``airflow dags test`` of one suite's DAG; its output goes to a log file of its own."""
    dag_id, log_path = f"llm_judge__{suite}", workdir / f"dag_test_{suite}.log"
    judged = today - dt.timedelta(days=1)
    print(f"running: airflow dags test {dag_id} {today:%Y-%m-%d}  (judges {judged:%Y-%m-%d}; log: {log_path})")
    with log_path.open("w") as log_file:
        return subprocess.call(
            [airflow, "dags", "test", dag_id, today.strftime("%Y-%m-%d")],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )


def airflow_env(airflow_home: Path, warehouse: Path) -> dict[str, str]:
    """A self-contained Airflow: its own home and SQLite metadata, this project's DAGs and plugins."""
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW_CONN_JUDGE_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse)}),
            "JUDGEFLOW_INCLUDE_DIR": str(PROJECT_ROOT / "include"),  # the shipped suites, whatever the shell says
            # `airflow dags test` cannot finish a DAG with a deadline in Airflow 3.3.2 (run_deadline.py)
            "JUDGEFLOW_RUN_DEADLINE_HOURS": "off",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return env


def _run(command: list[str], env: dict[str, str], *, quiet: bool) -> None:
    result = subprocess.run(command, env=env, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write((result.stdout or "") + (result.stderr or ""))
        raise SystemExit(f"{' '.join(command)} failed with exit {result.returncode}")
