"""``judgeflow-dev bench-warehouse``: staging and reading a day of N responses on PostgreSQL and DuckDB.

For each warehouse and size, a child process (so its peak memory is its own) fills a fresh source
table with N responses of one day (generated in SQL), creates judgeflow's tables with the migrations,
then times the two bulk steps of a run through the production code: ``Warehouse.stage_run`` (one
``INSERT ... SELECT`` with row numbers) and reading every batch back through
``Warehouse.read_batch`` (keyset pages of 500), as the score tasks would. It prints seconds, rows
per second and the child's peak resident memory after each step; sizes are measured side by side,
so the memory ratio between the largest and the smallest day says whether memory is flat in the
row count. PostgreSQL's own memory is the server's, outside the child; DuckDB runs inside it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DAY = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
GOAL_STAGE_S_PER_MILLION = 30.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev bench-warehouse", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL server (a schema is made and dropped)")
    parser.add_argument("--sizes", default="100000,1000000", help="responses in the day, comma-separated")
    parser.add_argument("--warehouses", default="postgresql,duckdb", help="postgresql and/or duckdb")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # warehouse:size, run in this process (the child)
    args = parser.parse_args(argv)
    if args.one:
        kind, size = args.one.split(":")
        print(json.dumps(_measure(kind, int(size), args.url)))
        return 0
    results = []
    for kind in args.warehouses.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            child = [
                sys.executable,
                "-m",
                "judgeflow_devkit.bench.warehouse",
                "--one",
                f"{kind}:{size}",
                "--url",
                args.url,
            ]
            done = subprocess.run(child, capture_output=True, text=True)
            if done.returncode:
                print(done.stderr, file=sys.stderr)
                return done.returncode
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(_line(results[-1]), flush=True)
    _summary(results)
    return 0


def _measure(kind: str, size: int, url: str) -> dict[str, Any]:
    from judgeflow.config import BatchingConfig, SourceConfig
    from judgeflow.rubric import load_rubric
    from judgeflow.storage.warehouse import Warehouse
    from judgeflow_devkit import PROJECT_ROOT

    engine, cleanup = _fresh_warehouse(kind, url)
    try:
        _fill(engine, kind, size)
        warehouse = Warehouse(engine, SourceConfig())
        warehouse.upgrade_schema()
        rubric = load_rubric(PROJECT_ROOT / "include" / "rubrics", "helpfulness")
        batching = BatchingConfig(batch_size=5_000, max_batches=256)
        started = time.perf_counter()
        staged = warehouse.stage_run(
            run_key="bench/run",
            rubrics=[rubric],
            start=DAY,
            end=DAY + dt.timedelta(days=1),
            rescore=False,
            batching=batching,
        )
        stage_s = time.perf_counter() - started
        stage_rss = _peak_rss_mb()
        started = time.perf_counter()
        read = 0
        for ref in warehouse.plan_batches("bench/run"):
            for chunk in warehouse.read_batch(
                ref, rubric_name=rubric.name, rubric_version=rubric.version_key, dag_run_id="run", rescore=False
            ):
                read += len(chunk)
        read_s = time.perf_counter() - started
        return {
            "warehouse": kind,
            "rows": size,
            "staged": staged,
            "stage_s": round(stage_s, 2),
            "stage_rss_mb": round(stage_rss, 1),
            "read": read,
            "read_s": round(read_s, 2),
            "read_rss_mb": round(_peak_rss_mb(), 1),
        }
    finally:
        engine.dispose()
        cleanup()


def _fresh_warehouse(kind: str, url: str) -> tuple[Any, Any]:
    from sqlalchemy import create_engine, text

    from judgeflow.storage.engine import warehouse_engine

    if kind == "duckdb":
        folder = tempfile.TemporaryDirectory(prefix="jf-bench-")
        return warehouse_engine(f"duckdb:///{Path(folder.name) / 'bench.duckdb'}"), folder.cleanup
    schema = f"jf_bench_wh_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return warehouse_engine(f"{url}?options=-csearch_path%3D{schema}"), drop


def _fill(engine: Any, kind: str, size: int) -> None:
    """``size`` responses spread over the day, generated by the database itself (the source table's
    primary key on ``id`` and an index on ``created_at``, as an application's would have)."""
    series = f"generate_series(1, {size}) AS g(n)" if kind == "postgresql" else f"range(1, {size + 1}) AS g(n)"
    seconds = "make_interval(secs => mod(n, 86400))" if kind == "postgresql" else "to_seconds(mod(n, 86400))"
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE app_responses (id BIGINT PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL, "
            "question TEXT NOT NULL, context TEXT, response TEXT, topic VARCHAR(40))"
        )
        conn.exec_driver_sql(
            "INSERT INTO app_responses (id, created_at, question, context, response, topic) "
            f"SELECT n, TIMESTAMPTZ '{DAY.isoformat()}' + {seconds}, 'How do I reset my password? ' || n, NULL, "
            f"'Open settings, choose security, then reset. Reference ' || n, 'topic' || mod(n, 7) FROM {series}"
        )
        conn.exec_driver_sql("CREATE INDEX ix_app_responses_created_at ON app_responses (created_at)")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _line(r: dict[str, Any]) -> str:
    return (
        f"{r['warehouse']:<11} {r['rows']:>10,} rows  "
        f"stage {r['stage_s']:>7.2f} s ({r['rows'] / max(r['stage_s'], 1e-9):>10,.0f}/s)  "
        f"read {r['read_s']:>7.2f} s ({r['read'] / max(r['read_s'], 1e-9):>8,.0f}/s)  "
        f"peak RSS {r['stage_rss_mb']:>6.1f} MB after staging, {r['read_rss_mb']:>6.1f} MB after reading"
    )


def _summary(results: list[dict[str, Any]]) -> None:
    for kind in dict.fromkeys(r["warehouse"] for r in results):
        mine = sorted((r for r in results if r["warehouse"] == kind), key=lambda r: r["rows"])
        small, large = mine[0], mine[-1]
        if small is not large:
            growth = large["rows"] / small["rows"]
            ratio = large["read_rss_mb"] / small["read_rss_mb"]
            print(f"{kind}: {growth:.0f}x the rows, {ratio:.2f}x the peak memory (flat means close to 1)")
        per_million = large["stage_s"] * 1_000_000 / large["rows"]
        if kind == "postgresql":
            verdict = "met" if per_million <= GOAL_STAGE_S_PER_MILLION else "NOT met"
            print(
                f"{kind}: staging {per_million:.1f} s per million rows "
                f"(goal <= {GOAL_STAGE_S_PER_MILLION:.0f} s: {verdict})"
            )
        else:
            print(f"{kind}: staging {per_million:.1f} s per million rows")


if __name__ == "__main__":
    raise SystemExit(main())
