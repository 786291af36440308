"""What a stack run is asked to do (:class:`StackOptions`) and what it found (:class:`StackReport`).

The report carries the figures and the failed checks as values: the scenario never raises for a
failed check, so the CLI can print everything it measured and the test can assert on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeflow_devkit.stack import ledger, observe, topology


@dataclass(frozen=True, kw_only=True)
class StackOptions:
    """Sizes and rates of one stack run (``judgeflow-dev stack-test --help`` names each)."""

    per_day: int = 800
    search_answers: int = 400  # the search suite's answers (JSON events) in the hours before the run
    search_sample_rate: float = 0.5
    backfill_per_day: int = 200
    batch_size: int = 150
    pool_slots: int = 4
    worker_concurrency: int = 2
    judge_concurrency: int = 16
    rpm: float = 1200.0  # low enough that the two suites together would pass it without the shared limiter
    latency_median_s: float = 0.2
    batch_processing_s: float = 8.0
    server_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    warehouse_database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    phase_timeout_s: float = 300.0
    log_dir: Path | None = None


@dataclass
class StackReport:
    """What the run measured and which checks failed (empty ``failures`` = passed)."""

    options: StackOptions
    failures: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    triggered_run: dict[str, Any] = field(default_factory=dict)
    search_run: dict[str, Any] = field(default_factory=dict)
    search: ledger.SuiteCount | None = None
    downstream_runs: list[dict[str, Any]] = field(default_factory=list)
    workers: list[observe.WorkerFigures] = field(default_factory=list)
    overlaps: int = 0
    overlap_seconds: float = 0.0
    scoring_seconds: float = 0.0
    api_requests: int = 0
    judged_realtime: int = 0
    judged_batch: int = 0
    batch_requests: int = 0
    api_per_second: float = 0.0
    http_429: int = 0
    backfill_runs: list[dict[str, Any]] = field(default_factory=list)
    deferred_seen: bool = False
    init_runs: list[str] = field(default_factory=list)  # the summary line of each `judgeflow deploy init`
    deadline_alerts: int = 0  # Slack messages the triggerer sent for runs past the DAG's deadline
    days: list[ledger.DayCount] = field(default_factory=list)
    log_dir: str = ""
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)  # of the machine, at the end: others share it

    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.failures.append(message)


def iter_report_lines(report: StackReport) -> Iterator[str]:
    """The figures, for people: phases, workers, the shared limit, the days."""
    opts = report.options
    yield f"stack: 2 celery workers x concurrency {opts.worker_concurrency}, pool {topology.POOL_NAME} "
    yield f"       {opts.pool_slots} slots, judge.concurrency {opts.judge_concurrency}, batch_size {opts.batch_size}, "
    yield f"       limit {opts.rpm:.0f} requests/min shared in Redis, emulator latency median {opts.latency_median_s}s"
    for name, seconds in report.seconds.items():
        yield f"  {name:<78}{seconds:>7.1f} s"
    for number, summary in enumerate(report.init_runs, 1):
        yield f"  init run {number}: {summary}"
    load = ", ".join(f"{x:.1f}" for x in report.load_average)
    yield f"  machine: {os.cpu_count()} cores, load average at the end (1, 5, 15 min): {load}"
    if report.workers:
        yield ""
        run, search = report.triggered_run, report.search_run
        yield f"support suite, triggered run {run.get('dag_run_id')}: {run.get('state')}"
        yield f"search suite, run on its upstream Asset {search.get('dag_run_id')}: {search.get('state')}"
        if report.search is not None:
            found = report.search
            yield (
                f"search suite: {found.staged} of {found.population} answers sampled and staged once; "
                f"scored per rubric {found.scored}, errors {found.errors}"
            )
        yield observe.format_workers(report.workers)
        total = sum(f.responses for f in report.workers)
        yield (
            f"support scoring phase {report.scoring_seconds:.1f} s for {total} responses: "
            f"{total / report.scoring_seconds if report.scoring_seconds else 0:.1f} responses/s end to end; "
        )
        yield (
            f"both suites together: API {report.api_per_second:.1f} requests/s while busy "
            f"({100 * report.api_per_second / (opts.rpm / 60):.0f}% of the shared limit), {report.http_429} x 429; "
            f"{report.api_requests} requests for {report.judged_realtime} uncached scores (the rest: cache hits)"
        )
        for run in report.downstream_runs:
            yield f"downstream {run['dag_run_id']} ({run['state']}) on the scores Asset events of {run['from']}"
        yield (
            f"score tasks on different workers running at once: {report.overlaps} pairs, "
            f"longest {report.overlap_seconds:.1f} s"
        )
        yield f"deadline alerts sent to Slack by the triggerer (runs outlive the deadline): {report.deadline_alerts}"
    if report.backfill_runs:
        yield ""
        for run in report.backfill_runs:
            yield f"backfill run {run['dag_run_id']}: {run['state']}"
        yield (
            f"a backfill score task deferred to the triggerer: {report.deferred_seen}; Message Batch requests "
            f"{report.batch_requests} for {report.judged_batch} uncached scores"
        )
    for day in report.days:
        yield (
            f"  {day.day}: {day.responses} responses, {day.scored} scored, {day.scored_twice} twice, "
            f"{day.errors} errors, by {', '.join(day.score_run_ids) or '-'}"
        )
