"""``judgeflow-dev bench-cost``: dollars per 1,000 responses, the usual way and judgeflow's ways.

For each judge model (Haiku 4.5 and Haiku 5.5 by default), on the same rows: the usual approach
(one call per response, no prompt caching, no result cache), then judgeflow's realtime and batch
modes (both with prompt caching), each on rows with no repeats and with a realistic share of
repeated inputs (which the result cache and in-run dedupe catch). The ``$ / 1,000`` column is the
model's published price applied to the ``usage`` the emulator returned, as judgeflow records it in
``judge_scores``; the ``billed`` column is what the emulator itself billed (its own copy of the
price list, batch requests at half price), so the two cross-check each other. The emulator knows
each model's tokenizer (Haiku 5.5 makes ~1.3x the tokens) and cache minimum.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import yaml
from sqlalchemy import create_engine

from judgeflow_devkit import PROJECT_ROOT, SHARED_DATA
from judgeflow_devkit.bench.throughput import quiet_http_logs

RUN_END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev bench-cost", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="responses per configuration (default 1000)")
    parser.add_argument("--repeat-share", type=float, default=0.2, help="share of repeated inputs (default 0.2)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="AlpacaEval JSONL (optional)")
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), help=f"judge models to price (default: {' '.join(MODELS)})"
    )
    args = parser.parse_args(argv)
    quiet_http_logs()
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        os.environ.pop(proxy, None)
    from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer

    rows_unique = list(bench_rows(args, repeat_share=0.0))
    rows_repeats = list(bench_rows(args, repeat_share=args.repeat_share))
    results: list[Result] = []
    with EmulatorServer(EmulatorConfig(latency_median_s=0.0, batch_processing_s=0.2)) as emulator:
        for model in args.models:
            rubric_dir = rubric_dir_for(model)
            for label, rows in (("no repeats", rows_unique), (f"{args.repeat_share:.0%} repeats", rows_repeats)):
                emulator.reset()  # every configuration starts with a cold prompt cache
                cost = usual_cost(emulator.url, rows, rubric_dir)
                results.append(Result(model, "one call per response, no caching", label, cost, billed(emulator)))
                for mode in ("realtime", "batch"):
                    emulator.reset()
                    cost = pipeline_cost(emulator.url, rows, mode=mode, rubric_dir=rubric_dir)
                    name = f"judgeflow {mode} + prompt caching + result cache"
                    results.append(Result(model, name, label, cost, billed(emulator)))
                print(f"{model}, {label}: done", flush=True)
    print_table(results, n=args.n)
    return 0


MODELS = ("claude-haiku-4-5", "claude-haiku-5-5")
GOAL_PER_THOUSAND = {"claude-haiku-5-5": 0.10}
"""The issue's target: Haiku 5.5 in batch mode with caching, at most $0.10 per 1,000 verdicts."""


class Result(NamedTuple):
    model: str
    approach: str
    data: str
    cost_usd: float
    billed_usd: float


def billed(emulator: Any) -> float:
    return float(emulator.stats()["billed_usd_total"])


def rubric_dir_for(model: str) -> Path:
    """Today's rubrics, with the default rubric's ``model`` set to ``model`` (in a temp folder)."""
    from judgeflow.rubric import load_rubric

    rubric = load_rubric(PROJECT_ROOT / "include" / "rubrics", "helpfulness")
    if rubric.model == model:
        return PROJECT_ROOT / "include" / "rubrics"
    folder = Path(tempfile.mkdtemp(prefix=f"judgeflow-bench-cost-rubrics-{model}-"))
    data = rubric.model_dump(mode="json")
    (folder / "helpfulness.yaml").write_text(yaml.safe_dump({**data, "model": model}), encoding="utf-8")
    return folder


def bench_rows(args: argparse.Namespace, *, repeat_share: float) -> Iterator[dict[str, Any]]:
    """N rows, a ``repeat_share`` of them repeating an earlier row's question and answer."""
    from judgeflow_devkit.sample_data import alpaca_responses, generate_responses

    nonce = secrets.token_hex(4)
    source = (
        alpaca_responses(args.data, count=args.n, end=RUN_END)
        if args.data.exists()
        else (r for r in generate_responses(count=args.n + 5, end=RUN_END, first_id=-4) if r["id"] >= 1)
    )
    rng = random.Random(11)
    earlier: list[dict[str, Any]] = []
    for row in source:
        row = {**row, "question": f"{row['question']} (case {nonce}-{row['id']})", "response": row["response"] or "-"}
        if earlier and rng.random() < repeat_share:
            twin = rng.choice(earlier)
            row = {**row, "question": twin["question"], "context": twin["context"], "response": twin["response"]}
        earlier.append(row)
        yield row


def usual_cost(emulator_url: str, rows: list[dict[str, Any]], rubric_dir: Path) -> float:
    """The usual script: every response judged, the whole prompt at full price every time."""
    import anthropic

    from judgeflow.config import Settings
    from judgeflow.judging.judge_call import usage_of
    from judgeflow.judging.pricing import cost_usd
    from judgeflow.judging.prompt import build_request
    from judgeflow.records import ResponseItem
    from judgeflow.rubric import load_rubric

    rubric = load_rubric(rubric_dir, "helpfulness")
    price = Settings().price_for(rubric.model)
    client = anthropic.Anthropic(api_key="usual", base_url=emulator_url)
    total = 0.0
    for row in rows:
        item = ResponseItem(row["id"], row["question"], row["context"], row["response"])
        params = build_request(rubric, item, max_response_chars=60_000, max_output_tokens=1024).params
        params["system"] = [{"type": "text", "text": params["system"][0]["text"]}]  # no cache_control
        total += cost_usd(usage_of(client.messages.create(**params)), price)
    return total


def pipeline_cost(emulator_url: str, rows: list[dict[str, Any]], *, mode: str, rubric_dir: Path) -> float:
    """judgeflow on a fresh SQLite warehouse and cache: extract, score (realtime or batch), summarize."""
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

    from judgeflow.tasks import batch_stages, pipeline
    from judgeflow.tasks.job import Job
    from judgeflow_devkit.sample_data import seed_warehouse

    folder = Path(tempfile.mkdtemp(prefix=f"judgeflow-bench-cost-{mode}-"))
    warehouse = folder / "warehouse.sqlite"
    seed_warehouse(create_engine(f"sqlite:///{warehouse}"), iter(rows))
    settings = folder / "judgeflow.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "rubric_dir": str(rubric_dir),
                "mode": mode,
                "cache": {"embedded_path": str(folder / "cache.sqlite")},
                "batch_mode": {"poll_interval_s": 0.1},
                "batching": {"batch_size": len(rows)},
            }
        ),
        encoding="utf-8",
    )
    os.environ.pop("AIRFLOW_CONN_JUDGE_CACHE", None)
    os.environ["AIRFLOW_CONN_JUDGE_WAREHOUSE"] = json.dumps({"conn_type": "sqlite", "host": str(warehouse)})
    os.environ["AIRFLOW_CONN_ANTHROPIC_DEFAULT"] = json.dumps(
        {"conn_type": "anthropic", "password": f"cost-{mode}", "host": emulator_url}
    )
    dag_run = SimpleNamespace(dag_id="llm_judge_daily", run_id=f"cost_{mode}_{secrets.token_hex(3)}", run_after=RUN_END)
    context = {"dag_run": dag_run, "logical_date": RUN_END, "params": {}}
    results = []
    for batch in pipeline.extract_responses(str(settings), context):
        if mode == "realtime":
            results.append(pipeline.score_batch(str(settings), batch, context))
            continue
        with Job.open(str(settings), context) as job:
            hook = AnthropicHook(conn_id=job.settings.connections.anthropic)
            batch_stages.submit_message_batches(job, hook, batch)
            while batch_stages.next_wait(job, hook, batch) is not None:
                time.sleep(0.1)
            results.append(batch_stages.collect_message_batches(job, hook, batch))
    (summary,) = pipeline.summarize_run(str(settings), results, context)["rubrics"].values()
    if summary["scored"] != len(rows):
        raise SystemExit(f"{mode}: scored {summary['scored']} of {len(rows)}")
    return float(summary["cost_usd"])


def print_table(results: list[Result], *, n: int) -> None:
    print(f"\ncost per 1,000 verdicts at each model's published prices, N={n} each, from emulator usage\n")
    print(f"{'model':18} {'':50} {'data':>12} {'$ / 1,000':>10} {'billed':>9} {'vs usual':>9}")
    usual = {(r.model, r.data): r.cost_usd for r in results if r.approach.startswith("one call")}
    for r in results:
        print(
            f"{r.model:18} {r.approach:50} {r.data:>12} {r.cost_usd / n * 1000:>10.4f} "
            f"{r.billed_usd / n * 1000:>9.4f} {r.cost_usd / usual[(r.model, r.data)]:>8.2f}x"
        )
    batch = [r for r in results if r.approach.startswith("judgeflow batch") and r.data == "no repeats"]
    print()
    for r in batch:
        per_thousand = r.cost_usd / n * 1000
        goal = GOAL_PER_THOUSAND.get(r.model)
        verdict = "" if goal is None else f" (goal <= ${goal:.2f}: {'met' if per_thousand <= goal else 'MISSED'})"
        print(f"{r.model}, batch + prompt caching, no repeats: ${per_thousand:.4f} per 1,000 verdicts{verdict}")
    if len(batch) == 2:
        print(f"ratio {batch[1].model} / {batch[0].model}: {batch[1].cost_usd / batch[0].cost_usd:.3f}")
