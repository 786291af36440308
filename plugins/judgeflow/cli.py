"""``judgeflow``: run any step without a scheduler.

- ``judgeflow demo``: seed a SQLite warehouse, start the emulator (unless ANTHROPIC_API_KEY is set),
  run the real DAG for one day with ``airflow dags test`` and print the scores.
- ``judgeflow emulator``: the local Messages API emulator, in the foreground.
- ``judgeflow seed``: fill a warehouse with generated sample responses.
- ``judgeflow bench``: throughput at the rate limit against the usual thread pool (``--help``).
- ``judgeflow bench-cost``: dollars per 1,000 responses, the usual way and judgeflow's (``--help``).
- ``judgeflow estimate``: what a backfill will cost, before it runs; ``judgeflow compare-versions``:
  old rubric version against new after it ran (``judgeflow.backfill``).
- ``judgeflow calibrate``: judge a rubric's golden set, print the agreement table (``--help``).
- ``judgeflow bench-ui``: page, chart and JSON endpoint times of the UI view at 10k-1M scores (``--help``).
- ``judgeflow rollup``: rebuild ``judge_daily_scores`` (the UI view's daily aggregates) for a range of days.
- ``judgeflow stack-test``: the DAG and a backfill on a native CeleryExecutor stack, checked (``--help``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the daily DAG once on the embedded default")
    demo.add_argument("--per-day", type=int, default=60, help="responses generated per day (8 days)")
    demo.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".judgeflow" / "demo")
    commands.add_parser("emulator", help="the Messages API emulator (see --help)", add_help=False)
    commands.add_parser("bench", help="the throughput benchmark (see --help)", add_help=False)
    commands.add_parser("bench-cost", help="dollars per 1,000 responses, by mode (see --help)", add_help=False)
    commands.add_parser("estimate", help="what a backfill will cost, before it runs (see --help)", add_help=False)
    commands.add_parser("compare-versions", help="old rubric version vs new (see --help)", add_help=False)
    commands.add_parser("calibrate", help="agreement of the judge with a golden set (see --help)", add_help=False)
    commands.add_parser("bench-ui", help="the UI view's page times at 10k-1M scores (see --help)", add_help=False)
    rollup = commands.add_parser("rollup", help="rebuild judge_daily_scores for a rubric version and days")
    rollup.add_argument("--settings", type=Path, default=PROJECT_ROOT / "include" / "judgeflow.yaml")
    rollup.add_argument("--url", help="SQLAlchemy URL of the warehouse (default: the judge_warehouse connection)")
    rollup.add_argument("--rubric", help="rubric name (default: the settings' rubric)")
    rollup.add_argument("--version", required=True, help="rubric version key, as in judge_scores")
    rollup.add_argument("--start", type=dt.date.fromisoformat, required=True, help="first day, YYYY-MM-DD")
    rollup.add_argument("--end", type=dt.date.fromisoformat, required=True, help="day after the last, YYYY-MM-DD")
    commands.add_parser("stack-test", help="the DAG on a native Celery stack, checked (see --help)", add_help=False)
    seed = commands.add_parser("seed", help="insert generated responses into a warehouse")
    seed.add_argument("--url", required=True, help="SQLAlchemy URL of the warehouse")
    seed.add_argument("--count", type=int, default=500)
    seed.add_argument("--days", type=int, default=1)
    args, rest = parser.parse_known_args(argv)
    if args.command == "emulator":
        from judgeflow.emulator.__main__ import main as emulator_main

        return emulator_main(rest)
    if args.command == "bench":
        from judgeflow.bench import main as bench_main

        return bench_main(rest)
    if args.command == "bench-cost":
        from judgeflow.bench_cost import main as bench_cost_main

        return bench_cost_main(rest)
    if args.command == "estimate":
        from judgeflow.backfill import estimate_main

        return estimate_main(rest)
    if args.command == "compare-versions":
        from judgeflow.backfill import compare_main

        return compare_main(rest)
    if args.command == "calibrate":
        from judgeflow.calibration_cli import main as calibrate_main

        return calibrate_main(rest)
    if args.command == "bench-ui":
        from judgeflow.ui.bench import main as bench_ui_main

        return bench_ui_main(rest)
    if args.command == "stack-test":
        from judgeflow.stack.command import main as stack_test_main

        return stack_test_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "seed":
        return _seed(args.url, args.count, args.days)
    if args.command == "rollup":
        return _rollup(args)
    return run_demo(workdir=args.workdir, per_day=args.per_day)


def _seed(url: str, count: int, days: int) -> int:
    from judgeflow.sample_data import generate_responses, seed_warehouse

    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    inserted = seed_warehouse(create_engine(url), generate_responses(count=count, end=end, days=days))
    print(f"inserted {inserted} responses into {url}")
    return 0


def _rollup(args: argparse.Namespace) -> int:
    """For a warehouse that had scores before the view existed, or after scores were written by hand."""
    from judgeflow.config import load_settings
    from judgeflow.connections import server_connection, warehouse_url
    from judgeflow.daily_scores import refresh_daily_scores
    from judgeflow.warehouse import Warehouse

    settings = load_settings(args.settings)
    url = args.url or warehouse_url(
        settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path, lookup=server_connection
    )
    warehouse = Warehouse.from_url(url, settings.source)
    warehouse.ensure_schema()
    rows = refresh_daily_scores(
        warehouse,
        rubric_name=args.rubric or settings.rubric,
        rubric_version=args.version,
        start=args.start,
        end=args.end,
    )
    print(f"judge_daily_scores: {rows} rows for days [{args.start}, {args.end})")
    return 0


def run_demo(*, workdir: Path, per_day: int) -> int:
    """Everything the README's first command promises, on a fresh folder each time."""
    from judgeflow.emulator import EmulatorConfig, EmulatorServer
    from judgeflow.sample_data import generate_responses, seed_warehouse

    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day = today - dt.timedelta(days=1)
    warehouse = workdir / "warehouse.sqlite"
    if warehouse.exists():
        warehouse.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{warehouse}")
    baseline = generate_responses(count=7 * per_day, end=day, days=7, seed=1)
    current = generate_responses(
        count=per_day, end=today, days=1, seed=2, first_id=7 * per_day + 1, low_quality_topic="shipping"
    )
    seeded = seed_warehouse(engine, baseline) + seed_warehouse(engine, current)
    print(f"seeded {seeded} responses (8 days, a quality drop in 'shipping' on {day:%Y-%m-%d}) into {warehouse}")

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
        print(
            f"running: airflow dags test llm_judge_daily {today:%Y-%m-%d}  (judges {day:%Y-%m-%d}; "
            f"log: {workdir / 'dag_test.log'})"
        )
        with (workdir / "dag_test.log").open("w") as log_file:
            code = subprocess.call(
                [airflow, "dags", "test", "llm_judge_daily", today.strftime("%Y-%m-%d")],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
    finally:
        if emulator is not None:
            emulator.stop()
    if code != 0:
        print(f"the DAG run failed (exit {code}); see {workdir / 'dag_test.log'}", file=sys.stderr)
        return code
    from judgeflow.demo_report import print_report

    return print_report(engine, warehouse=warehouse, log_path=workdir / "dag_test.log")


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


if __name__ == "__main__":
    raise SystemExit(main())
