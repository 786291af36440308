"""``judgeflow-dev stack-test`` (``make stack-test``): the native Celery stack run, its figures and verdict."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from judgeflow_devkit.stack.report import StackOptions, iter_report_lines
from judgeflow_devkit.stack.scenario import run_stack


def build_parser() -> argparse.ArgumentParser:
    defaults = StackOptions()
    p = argparse.ArgumentParser(
        prog="judgeflow-dev stack-test",
        description="Run two suites at once and a backfill on a native CeleryExecutor stack (Postgres, Redis, "
        "api-server, scheduler, dag-processor, triggerer, 2 workers) and check the result.",
    )
    p.add_argument("--per-day", type=int, default=defaults.per_day, help="responses of the triggered run's day")
    p.add_argument("--search-answers", type=int, default=defaults.search_answers, help="the search suite's answers")
    p.add_argument("--backfill-per-day", type=int, default=defaults.backfill_per_day)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="responses per mapped score task")
    p.add_argument("--pool-slots", type=int, default=defaults.pool_slots, help="slots of the judge_api pool")
    p.add_argument("--worker-concurrency", type=int, default=defaults.worker_concurrency, help="per celery worker")
    p.add_argument(
        "--judge-concurrency", type=int, default=defaults.judge_concurrency, help="requests in flight per task"
    )
    p.add_argument("--rpm", type=float, default=defaults.rpm, help="the account's limit (emulator and settings)")
    p.add_argument("--latency-median", type=float, default=defaults.latency_median_s, help="emulator, seconds")
    p.add_argument("--server-url", default=defaults.server_url, help="PostgreSQL server for the metadata database")
    p.add_argument(
        "--warehouse-database-url",
        default=defaults.warehouse_database_url,
        help="PostgreSQL as an administrator: the run's warehouse database is created on this server",
    )
    p.add_argument("--phase-timeout", type=float, default=defaults.phase_timeout_s, help="seconds per phase")
    p.add_argument("--log-dir", type=Path, default=None, help="where each service's log goes (default: a temp dir)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    options = dataclasses.replace(
        StackOptions(),
        per_day=args.per_day,
        search_answers=args.search_answers,
        backfill_per_day=args.backfill_per_day,
        batch_size=args.batch_size,
        pool_slots=args.pool_slots,
        worker_concurrency=args.worker_concurrency,
        judge_concurrency=args.judge_concurrency,
        rpm=args.rpm,
        latency_median_s=args.latency_median,
        server_url=args.server_url,
        warehouse_database_url=args.warehouse_database_url,
        phase_timeout_s=args.phase_timeout,
        log_dir=args.log_dir,
    )
    report = run_stack(options, say=lambda line: print(line, flush=True))
    print()
    for line in iter_report_lines(report):
        print(line)
    if report.failures:
        print(f"\nFAILED ({len(report.failures)}), service logs in {report.log_dir}:", file=sys.stderr)
        for failure in report.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("\nstack test passed")
    return 0
