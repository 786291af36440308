"""``judgeflow deploy init``: the command line of :mod:`judgeflow.deploy.init`.

Endpoints are flags; secrets are environment variables only (a flag would show in ``ps``):
``ANTHROPIC_API_KEY``, ``JUDGEFLOW_WAREHOUSE_PASSWORD``, ``SLACK_WEBHOOK_URL``. ``docker compose``
passes them from ``.env`` (``env_file``), never from the shell that runs ``up``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from judgeflow.config import default_settings_path, load_settings
from judgeflow.deploy.init import InitOptions, run_init
from judgeflow.errors import ConfigError
from judgeflow.suite import discover_suites


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="judgeflow deploy init",
        description="Set up a deployment: migrate Airflow's database, create the judge_api pool, the "
        "connections that do not exist yet, judgeflow's warehouse role and tables; then check. "
        "Idempotent: a second run changes nothing. Exit 1 when a problem keeps it from judging for real.",
    )
    p.add_argument("--settings", type=Path, default=None, help="settings file (default: include/judgeflow.yaml)")
    p.add_argument("--pool-slots", type=int, default=8, help="slots of a new judge_api pool (default 8)")
    p.add_argument(
        "--emulator-url",
        default=os.environ.get("JUDGEFLOW_EMULATOR_URL") or None,
        help="make anthropic_default point at the local Messages API emulator (a trial; default "
        "$JUDGEFLOW_EMULATOR_URL). Without it the judge is the real API, with $ANTHROPIC_API_KEY",
    )
    p.add_argument("--cache-url", help="Redis for judge_cache, its database in the path: redis://redis:6379/1")
    p.add_argument(
        "--warehouse-admin-url",
        default=os.environ.get("JUDGEFLOW_WAREHOUSE_ADMIN_URL") or None,
        help="PostgreSQL URL of the warehouse database as its administrator (default "
        "$JUDGEFLOW_WAREHOUSE_ADMIN_URL): creates the database, judgeflow's tables, role and grants",
    )
    p.add_argument("--warehouse-role", default="judgeflow", help="judgeflow's login role (default judgeflow)")
    p.add_argument("--skip-migrate", action="store_true", help="leave `airflow db migrate` to someone else")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pool_slots < 1:
        parser.error("--pool-slots must be at least 1")
    path = args.settings or default_settings_path()
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        parser.error(str(exc))
    catalog = discover_suites(Path(path).parent)
    for problem in catalog.problems:  # its DAG shows the same as an import error; init goes on
        print(f"warning: {problem}")
    options = InitOptions(
        settings=settings,
        suites=catalog.suites,
        pool_slots=args.pool_slots,
        emulator_url=args.emulator_url,
        anthropic_api_key=os.environ.get("ANTHROPIC_API_KEY") or None,
        cache_url=args.cache_url,
        warehouse_admin_url=args.warehouse_admin_url,
        warehouse_role=args.warehouse_role,
        warehouse_password=os.environ.get("JUDGEFLOW_WAREHOUSE_PASSWORD") or None,
        slack_webhook_url=os.environ.get("SLACK_WEBHOOK_URL") or None,
        migrate=not args.skip_migrate,
    )
    report = run_init(options)
    for line in report.lines():
        print(line, flush=True)
    return 1 if report.problems else 0
