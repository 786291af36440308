"""``judgeflow-dev``: the developer's commands (the production commands are ``judgeflow``).

- ``judgeflow-dev demo``: seed a SQLite warehouse, start the emulator (unless ANTHROPIC_API_KEY is
  set), run the real DAG for one day with ``airflow dags test`` and print the scores;
- ``judgeflow-dev emulator``: the local Messages API emulator, in the foreground;
- ``judgeflow-dev seed``: fill a warehouse with generated sample responses;
- ``judgeflow-dev calibrate --emulator``: ``judgeflow calibrate`` against a local emulator;
- ``judgeflow-dev bench``, ``bench-cost``, ``bench-ui``, ``bench-warehouse``, ``bench-parse``,
  ``bench-alerts``: throughput, dollars per 1,000 verdicts, the UI view's page times, staging and
  reading a 1M-row day, the DAG files' parse time with many suites, the share of null 28-day
  timelines that get any alert (``--help`` on each);
- ``judgeflow-dev ui``: Airflow's api-server with the judgeflow view on ``make demo``'s data, and its login;
- ``judgeflow-dev mutate``: mutation testing (mutmut) of the modules that carry the promises, with a
  table of survivors per module (docs/mutation.md);
- ``judgeflow-dev stack-test``: the DAG and a backfill on a native CeleryExecutor stack, checked.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
from pathlib import Path

from judgeflow_devkit import PROJECT_ROOT

COMMANDS = {
    "emulator": ("judgeflow_devkit.emulator.__main__:main", "the Messages API emulator (see --help)"),
    "calibrate": ("judgeflow_devkit.calibrate:main", "judgeflow calibrate, with --emulator against a local one"),
    "bench": ("judgeflow_devkit.bench.throughput:main", "the throughput benchmark (see --help)"),
    "bench-cost": ("judgeflow_devkit.bench.cost:main", "dollars per 1,000 responses, by mode (see --help)"),
    "bench-ui": ("judgeflow_devkit.bench.ui:main", "the UI view's page times at 10k-1M scores (see --help)"),
    "bench-warehouse": ("judgeflow_devkit.bench.warehouse:main", "staging and reading a 1M-row day (see --help)"),
    "bench-parse": ("judgeflow_devkit.bench.parse:main", "the DAG files' parse time with 50 suites (see --help)"),
    "ui": ("judgeflow_devkit.ui_server:main", "Airflow's api-server with the view on make demo's data (see --help)"),
    "bench-alerts": ("judgeflow_devkit.bench.alerts:main", "false alerts of null 28-day timelines (see --help)"),
    "mutate": ("judgeflow_devkit.mutate:main", "mutation testing of the modules that carry the promises (see --help)"),
    "stack-test": ("judgeflow_devkit.stack.command:main", "the DAG on a native Celery stack, checked (see --help)"),
}
"""Commands with their own parsers: ``module:function`` taking the remaining arguments, imported on use."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the daily DAG once on the embedded default")
    demo.add_argument("--per-day", type=int, default=60, help="responses generated per day (8 days)")
    demo.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".judgeflow" / "demo")
    seed = commands.add_parser("seed", help="insert generated responses into a warehouse")
    seed.add_argument("--url", required=True, help="SQLAlchemy URL of the warehouse")
    seed.add_argument("--count", type=int, default=500)
    seed.add_argument("--days", type=int, default=1)
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command in COMMANDS:
        module, function = COMMANDS[args.command][0].split(":")
        return int(getattr(importlib.import_module(module), function)(rest))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "seed":
        return _seed(args.url, args.count, args.days)
    from judgeflow_devkit.demo import run_demo

    return run_demo(workdir=args.workdir, per_day=args.per_day)


def _seed(url: str, count: int, days: int) -> int:
    from sqlalchemy import create_engine

    from judgeflow_devkit.sample_data import generate_responses, seed_warehouse

    end = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    engine = create_engine(url)
    try:
        inserted = seed_warehouse(engine, generate_responses(count=count, end=end, days=days))
    finally:
        engine.dispose()
    print(f"inserted {inserted} responses into {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
