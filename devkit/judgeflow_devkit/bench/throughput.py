"""``judgeflow-dev bench``: throughput at the rate limit, against the usual thread pool, side by side.

It starts the emulator in its own process with about 1 s of lognormal latency and a requests-per-
minute limit, then for each warehouse backend seeds N responses and runs the pipeline's own task
functions (``extract_responses``, the mapped ``score_batch`` calls, each in a fresh process as a
worker would run it, and ``summarize_run``), reading the figures back from the warehouse and the
emulator. The baseline is the usual approach: a ``ThreadPoolExecutor`` of 10 threads, one SDK call
per response (the SDK's own retries), no cache, on the same rows and the same emulator.

Every bench row is made unique (a case number in the question), so the result cache cannot flatter
the throughput: every response costs one request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, text

from judgeflow_devkit import PROJECT_ROOT, SHARED_DATA

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RUN_END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


@dataclass
class Figures:
    name: str
    responses: int
    scored: int
    errors: int
    wall_s: float
    api_window_s: float
    requests: int
    answered_429: int
    retries: int
    peak_task_rss_mb: float
    cost_usd: float

    def throughput(self) -> float:
        """Responses a second while the API was being called (first request to last reply)."""
        return self.scored / self.api_window_s if self.api_window_s else 0.0

    def end_to_end(self) -> float:
        """Responses a second over the whole scoring step, task start-up included."""
        return self.scored / self.wall_s if self.wall_s else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev bench", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="responses per backend (default 5000)")
    parser.add_argument("--baseline-n", type=int, default=1000, help="responses for the slow baseline")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument("--workers", type=int, default=4, help="score tasks running at once")
    parser.add_argument("--concurrency", type=int, default=24, help="requests in flight per task")
    parser.add_argument("--rpm", type=int, default=3000, help="the emulator's requests-per-minute limit")
    parser.add_argument("--latency", type=float, default=1.0, help="the emulator's median latency, s")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="AlpacaEval JSONL (optional)")
    args = parser.parse_args(argv)
    quiet_http_logs()
    os.environ.pop("ANTHROPIC_API_KEY", None)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(proxy, None)
    ceiling = args.rpm / 60
    results: list[Figures] = []
    with emulator_process(rpm=args.rpm, latency=args.latency) as url:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            results.append(bench_pipeline(backend, url, args))
            time.sleep(2)  # let the emulator's bucket refill between phases
        if args.baseline_n > 0:
            results.append(bench_baseline(url, args))
    print_table(results, ceiling=ceiling, args=args)
    return 0


def rows(args: argparse.Namespace, count: int, nonce: str) -> Iterator[dict[str, Any]]:
    """AlpacaEval answers when the shared data is there, else generated ones; unique either way."""
    from judgeflow_devkit.sample_data import alpaca_responses, generate_responses

    source = (
        alpaca_responses(args.data, count=count, end=RUN_END, days=1)
        if args.data.exists()
        else generate_responses(count=count + 5, end=RUN_END, days=1, first_id=-4)
    )
    for row in source:
        if row["id"] >= 1 and row["response"]:
            yield {**row, "question": f"{row['question']} (case {nonce}-{row['id']})"}


def bench_pipeline(backend: str, emulator_url: str, args: argparse.Namespace) -> Figures:
    from judgeflow.tasks import pipeline
    from judgeflow_devkit.sample_data import seed_warehouse

    nonce = secrets.token_hex(4)
    folder = Path(tempfile.mkdtemp(prefix=f"judgeflow-bench-{backend}-"))
    url, cleanup = warehouse_for(backend, folder, nonce)
    engine = create_engine(url)
    seeded = seed_warehouse(engine, rows(args, args.n, nonce))
    settings = folder / "judgeflow.yaml"
    settings.write_text(yaml.safe_dump(bench_settings(args, folder, seeded)), encoding="utf-8")
    os.environ["AIRFLOW_CONN_JUDGE_WAREHOUSE"] = json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}})
    os.environ["AIRFLOW_CONN_JUDGE_CACHE"] = "redis://127.0.0.1:6379/0"
    os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
        {"conn_type": "anthropic", "password": f"bench-{nonce}", "host": emulator_url}
    )
    context = fake_task_context(f"bench__{backend}__{nonce}")
    print(f"[{backend}] seeded {seeded} responses; scoring with {args.workers} tasks at a time", flush=True)
    batches = pipeline.extract_responses(str(settings), context)
    before = reset_emulator(emulator_url)
    started = time.perf_counter()
    spawn = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=spawn, max_tasks_per_child=1) as pool:
        outcomes = list(pool.map(score_in_worker, [(str(settings), b, context["dag_run"].run_id) for b in batches]))
    wall = time.perf_counter() - started
    after = emulator_stats(emulator_url)
    (summary,) = pipeline.summarize_run(str(settings), [o["totals"] for o in outcomes], context)["rubrics"].values()
    cleanup()
    return Figures(
        name=f"judgeflow on {backend}",
        responses=seeded,
        scored=summary["scored"],
        errors=summary["errors"],
        wall_s=wall,
        api_window_s=api_window(after),
        requests=after["requests_total"] - before["requests_total"],
        answered_429=after["by_status"].get("429", 0) - before["by_status"].get("429", 0),
        retries=summary["retries"],
        peak_task_rss_mb=max(o["peak_rss_mb"] for o in outcomes),
        cost_usd=summary["cost_usd"],
    )


def quiet_http_logs() -> None:
    """One INFO line per request would drown the figures."""
    import logging

    for name in ("httpx", "httpx2", "anthropic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def score_in_worker(job: tuple[str, dict[str, Any], str]) -> dict[str, Any]:
    """One mapped score task in its own process, as a worker runs it; returns its peak memory too."""
    from judgeflow.tasks import pipeline

    quiet_http_logs()
    settings, batch, run_id = job
    totals = pipeline.score_batch(settings, batch, fake_task_context(run_id))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"totals": totals, "peak_rss_mb": peak_kb / 1024}


def bench_baseline(emulator_url: str, args: argparse.Namespace) -> Figures:
    """The usual script: 10 threads, one call per response, SDK retries, no cache."""
    import anthropic

    from judgeflow.config import Settings
    from judgeflow.judging.judge_call import usage_of
    from judgeflow.judging.pricing import cost_usd
    from judgeflow.judging.prompt import build_request
    from judgeflow.judging.verdict import parse_verdict
    from judgeflow.records import ResponseItem, Usage, Verdict
    from judgeflow.rubric import load_rubric

    rubric = load_rubric(PROJECT_ROOT / "include" / "rubrics", "helpfulness")
    price = Settings().price_for(rubric.model)
    client = anthropic.Anthropic(api_key="baseline", base_url=emulator_url, timeout=60)
    items = [
        ResponseItem(r["id"], r["question"], r["context"], r["response"])
        for r in rows(args, args.baseline_n, secrets.token_hex(4))
    ]
    print(f"[baseline] scoring {len(items)} responses with 10 threads", flush=True)

    def judge(item: ResponseItem) -> tuple[bool, Usage]:
        request = build_request(rubric, item, max_response_chars=60_000, max_output_tokens=1024)
        try:
            message = client.messages.create(**request.params)
        except anthropic.APIError:
            return False, Usage()
        return isinstance(parse_verdict(list(message.content), rubric), Verdict), usage_of(message)

    before = reset_emulator(emulator_url)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(judge, items))
    wall = time.perf_counter() - started
    after = emulator_stats(emulator_url)
    requests = after["requests_total"] - before["requests_total"]
    scored = sum(ok for ok, _ in outcomes)
    return Figures(
        name="baseline: 10 threads",
        responses=len(items),
        scored=scored,
        errors=len(items) - scored,
        wall_s=wall,
        api_window_s=api_window(after),
        requests=requests,
        answered_429=after["by_status"].get("429", 0) - before["by_status"].get("429", 0),
        retries=requests - len(items),
        peak_task_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        cost_usd=sum(cost_usd(usage, price) for _, usage in outcomes),
    )


def bench_settings(args: argparse.Namespace, folder: Path, seeded: int) -> dict[str, Any]:
    return {
        "rubric_dir": str(PROJECT_ROOT / "include" / "rubrics"),
        "cache": {"embedded_path": str(folder / "cache.sqlite")},
        "batching": {"batch_size": math.ceil(seeded / args.workers), "max_batches": 1024},
        "judge": {"concurrency": args.concurrency},
        "limits": {"requests_per_minute": args.rpm},
    }


def fake_task_context(run_id: str) -> dict[str, Any]:
    """The parts of an Airflow task context the pipeline reads, for a run judging RUN_END's day."""
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=run_id, run_after=RUN_END)
    return {"dag_run": dag_run, "logical_date": RUN_END, "params": {}}


def warehouse_for(backend: str, folder: Path, nonce: str) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'warehouse.sqlite'}", lambda: None
    if backend != "postgres":
        raise SystemExit(f"unknown backend {backend!r}: sqlite or postgres")
    schema = f"jf_bench_{nonce}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))

    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", drop


class emulator_process:  # a context manager, named like open()
    """The emulator in its own process, so its work does not share the benchmark's interpreter."""

    def __init__(self, *, rpm: int, latency: float) -> None:
        self.args = ["--rpm", str(rpm), "--latency-median", str(latency), "--latency-sigma", "0.3"]

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [sys.executable, "-m", "judgeflow_devkit.emulator", "--port", str(port), "--log-level", "WARNING"]
        self.process = subprocess.Popen([*command, *self.args])
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{url}/_emulator/stats", timeout=1)
                return url
            except httpx.HTTPError:
                time.sleep(0.1)
        self.process.kill()
        raise SystemExit("the emulator did not start")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def emulator_stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/_emulator/stats", timeout=5).json())


def reset_emulator(url: str) -> dict[str, Any]:
    """Zero the emulator's counters (and refill its buckets) so each phase is measured alone."""
    httpx.post(f"{url}/_emulator/reset", timeout=5).raise_for_status()
    return emulator_stats(url)


def api_window(stats: dict[str, Any]) -> float:
    first, last = stats.get("first_request_at"), stats.get("last_response_at")
    return float(last - first) if first is not None and last is not None else 0.0


def print_table(results: list[Figures], *, ceiling: float, args: argparse.Namespace) -> None:
    print(f"\nemulator: {args.rpm} requests/min (ceiling {ceiling:.1f}/s), lognormal latency median {args.latency}s")
    print(f"judgeflow: {args.workers} score tasks at a time, up to {args.concurrency} requests in flight each\n")
    header = (
        f"{'':24} {'responses':>9} {'scored':>7} {'errors':>6} {'wall s':>7} {'e2e/s':>6} {'api/s':>6} "
        f"{'of ceiling':>10} {'requests':>8} {'429s':>5} {'429 %':>6} {'retries':>7} {'task MB':>7} {'cost $':>7}"
    )
    print(header)
    for f in results:
        share_429 = f.answered_429 / f.requests if f.requests else 0.0
        print(
            f"{f.name:24} {f.responses:>9} {f.scored:>7} {f.errors:>6} {f.wall_s:>7.1f} {f.end_to_end():>6.1f} "
            f"{f.throughput():>6.1f} {f.throughput() / ceiling:>10.1%} {f.requests:>8} {f.answered_429:>5} "
            f"{share_429:>6.2%} {f.retries:>7} {f.peak_task_rss_mb:>7.0f} {f.cost_usd:>7.2f}"
        )
    print(
        "\nwall s / e2e/s: the whole scoring step, worker start-up included; api/s and 'of ceiling': from the "
        "emulator's first request to its last reply. task MB: peak RSS of one score task process."
    )
    baseline = next((f for f in results if f.name.startswith("baseline")), None)
    if baseline and baseline.throughput():
        for f in results:
            if f is not baseline:
                print(f"{f.name}: {f.throughput() / baseline.throughput():.1f}x the baseline's throughput")
