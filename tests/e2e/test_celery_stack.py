"""Two suites on a real distributed stack: CeleryExecutor, two workers, Postgres, Redis.

``judgeflow_devkit.stack`` starts api-server, scheduler, dag-processor, triggerer and two Celery workers
from this virtualenv (what docker-compose.yaml runs in containers), runs the support suite (triggered
through the REST API) and the search suite (on its upstream Asset's event) at once under one shared
rate limit, runs a three-day backfill through the scheduler, and stops everything by pid. This test
holds the run to its checks; ``make stack-test`` runs the same scenario and prints the figures.
"""

from __future__ import annotations

import shutil

import pytest

from judgeflow_devkit.stack.report import StackOptions, iter_report_lines
from judgeflow_devkit.stack.scenario import (
    BACKFILL_DAYS,
    DAG_ID,
    DECOY_DAYS,
    SEARCH_DAG,
    SEARCH_RUBRICS,
    TRIGGERED_DAY,
    WORKERS,
    run_stack,
)
from tests.conftest import require_tcp, service_missing


@pytest.mark.timeout(900)
def test_two_suites_and_a_backfill_on_two_celery_workers() -> None:
    require_tcp("PostgreSQL", ("127.0.0.1", 5432))
    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed (the stack runs a private one)")

    report = run_stack(StackOptions(), say=print)
    for line in iter_report_lines(report):
        print(line)

    assert report.failures == [], "\n".join(report.failures)
    assert len(report.init_runs) == 2 and " 0 changed," in report.init_runs[1], "compose's set-up, run again: no change"
    assert report.triggered_run["state"] == "success"
    assert {figures.worker for figures in report.workers} == set(WORKERS), "mapped tasks on both workers"
    assert report.overlaps > 0 and report.overlap_seconds > 0, "on both at the same time"
    assert report.search_run["state"] == "success" and report.search_run["run_type"] == "asset_triggered"
    assert report.http_429 == 0, "the Redis limiter held both suites on both workers under the shared limit"
    assert report.api_per_second <= report.options.rpm / 60 * 1.02, "together at or under the account's limit"
    assert report.api_requests == report.judged_realtime > 0, "one request per uncached score: none judged twice"
    assert report.search is not None and report.search.judged_once_each(SEARCH_RUBRICS), report.search
    triggered_by = {source for run in report.downstream_runs for source in run["from"]}
    assert {DAG_ID, SEARCH_DAG} <= {dag_id for dag_id, _ in triggered_by}, "a downstream run per suite's Asset event"
    assert [run["state"] for run in report.backfill_runs] == ["success"] * 3
    assert report.deferred_seen, "batch mode waited in the triggerer"
    days = {day.day: day for day in report.days}
    for judged in (TRIGGERED_DAY, *BACKFILL_DAYS):
        assert days[judged].scored_once_each, days[judged]
        assert len(days[judged].score_run_ids) == 1, days[judged]
    assert len({days[d].score_run_ids for d in BACKFILL_DAYS}) == 3, "each backfill day by its own run"
    for decoy in DECOY_DAYS:
        assert days[decoy].responses > 0 and days[decoy].scored == 0, days[decoy]
