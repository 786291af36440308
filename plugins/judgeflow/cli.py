"""``judgeflow``: the operator's commands, run beside Airflow (no scheduler needed).

- ``judgeflow estimate``: what a backfill will cost, before it runs (``--help``);
- ``judgeflow compare-versions``: old rubric version against new, after a backfill;
- ``judgeflow calibrate``: judge a rubric's golden set now, print the agreement table, store it;
- ``judgeflow golden export``: append the responses people reviewed in the view to the rubric's golden set;
- ``judgeflow migrate-model``: move a rubric to another judge model: price, calibration gate, shadow
  run, comparison, recommendation (``judgeflow.rubrics.migrate``);
- ``judgeflow rollup``: rebuild ``judge_daily_scores`` (the UI view's daily aggregates) for a range of days;
- ``judgeflow deploy init``: set up a deployment (migrate, pool, connections, warehouse role and
  tables), idempotently; what ``docker compose`` and the stack test run.
- ``judgeflow db upgrade | sql | current``: judgeflow's tables under migrations (``judgeflow.storage.db_commands``).
- ``judgeflow alerts accept | open``: accept a lasting level shift as the new normal, list what is open
  (``judgeflow.storage.alert_commands``).

The development commands (demo, emulator, benchmarks, the stack test) are ``judgeflow-dev``, from
the dev kit, which the production image does not install.
"""

from __future__ import annotations

import argparse
import datetime as dt
from contextlib import closing
from pathlib import Path
from typing import Any

from judgeflow.config import default_settings_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("estimate", "what a backfill will cost, before it runs (see --help)"),
        ("compare-versions", "old rubric version vs new (see --help)"),
        ("calibrate", "agreement of the judge with a golden set (see --help)"),
        ("golden", "`judgeflow golden export`: reviewed responses into the golden set (see --help)"),
        ("migrate-model", "move a rubric to another judge model, gated by calibration (see --help)"),
        ("deploy", "set up a deployment: `judgeflow deploy init` (see --help)"),
    ):
        commands.add_parser(name, help=help_text, add_help=False)
    rollup = commands.add_parser("rollup", help="rebuild judge_daily_scores for a rubric version and days")
    rollup.add_argument("--settings", type=Path, default=None, help="settings or suite file (include/judgeflow.yaml)")
    rollup.add_argument("--url", help="SQLAlchemy URL of the warehouse (default: the judge_warehouse connection)")
    rollup.add_argument("--rubric", help="rubric name (default: the settings' rubric)")
    rollup.add_argument("--version", required=True, help="rubric version key, as in judge_scores")
    rollup.add_argument("--start", type=dt.date.fromisoformat, required=True, help="first day, YYYY-MM-DD")
    rollup.add_argument("--end", type=dt.date.fromisoformat, required=True, help="day after the last, YYYY-MM-DD")
    from judgeflow.storage import alert_commands, db_commands

    db_commands.add_parser(commands)
    alert_commands.add_parser(commands)
    args, rest = parser.parse_known_args(argv)
    if args.command == "deploy":
        return _deploy(rest)
    if args.command == "db":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return _db(args)
    if args.command == "alerts":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return _alerts(args)
    if args.command != "rollup":
        from judgeflow.rubrics import commands as rubric_commands

        run = {
            "estimate": rubric_commands.estimate_main,
            "compare-versions": rubric_commands.compare_main,
            "calibrate": rubric_commands.calibrate_main,
            "golden": rubric_commands.golden_main,
            "migrate-model": rubric_commands.migrate_main,
        }[args.command]
        return run(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return _rollup(args)


def _deploy(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: judgeflow deploy init [--help]\n\nSet up a deployment; `judgeflow deploy init --help`.")
        return 0 if argv else 2
    if argv[0] != "init":
        print(f"judgeflow deploy: unknown subcommand {argv[0]!r}; the one there is: init")
        return 2
    from judgeflow.deploy.command import main as init_main

    return init_main(argv[1:])


def _db(args: argparse.Namespace) -> int:
    from judgeflow.storage import db_commands

    return _reporting_errors(f"judgeflow db {args.db_command}", db_commands.run, args)


def _alerts(args: argparse.Namespace) -> int:
    from judgeflow.storage import alert_commands

    return _reporting_errors(f"judgeflow alerts {args.alerts_command}", alert_commands.run, args)


def _reporting_errors(command: str, run: Any, args: argparse.Namespace) -> int:
    """Run a subcommand; a judgeflow error is one line on stderr naming the command, and exit status 2."""
    import sys

    from judgeflow.errors import JudgeflowError

    try:
        return int(run(args))
    except JudgeflowError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2


def _rollup(args: argparse.Namespace) -> int:
    """For a warehouse that had scores before the view existed, or after scores were written by hand."""
    from judgeflow.connections import server_connection, warehouse_target
    from judgeflow.storage.daily_scores import refresh_daily_scores
    from judgeflow.storage.warehouse import Warehouse
    from judgeflow.suite import load_suite

    settings = load_suite(args.settings or default_settings_path()).settings  # a suite file over its defaults
    url = args.url or warehouse_target(
        settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path, lookup=server_connection
    )
    with closing(Warehouse.from_url(url, settings.source)) as warehouse:
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


if __name__ == "__main__":
    raise SystemExit(main())
