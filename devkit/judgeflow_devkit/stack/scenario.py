"""The stack run: start the distributed topology, run two suites and a backfill through it, check, report.

1. A fresh metadata database, warehouse database, private redis-server, Airflow home and free ports.
2. Seed the warehouse: the support suite's table (one day for a triggered run, three for a
   backfill, two decoy days around them) and the search suite's JSON log events (the last hours).
   Write the deployment: two suites over shared defaults, and a downstream DAG on their scores Assets.
3. ``judgeflow deploy init``, as compose's ``airflow-init`` runs it (migrate, pool, connections,
   judgeflow's warehouse role, grants and tables), twice: the second run must change nothing. Then
   the emulator, api-server (and compose's healthcheck against it), scheduler, dag-processor,
   triggerer and two Celery workers, each in its own process group.
4. Both suites at once, realtime, under the one rate limit they share in Redis: trigger
   ``llm_judge__support`` through the REST API, and post the event of the search suite's upstream
   Asset (its application's log load), on which the scheduler starts ``llm_judge__search``.
5. ``airflow backfill create`` over three days of the support suite with the README's rubric-change
   conf (rescore, in Message Batches mode, so the triggerer does the waiting) and wait for its runs.
6. Check: runs succeeded, score tasks ran on both workers at once, every response of the judged days
   scored once by the right run, every sampled search answer judged once under each of its two
   rubrics, decoy days untouched, no 429 and the two suites together at or under the limit, each
   suite's scores Asset event ran the downstream DAG, a score task deferred. Everything started is
   stopped by pid, whatever happened.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine, create_engine

from judgeflow_devkit.slack_receiver import SlackReceiver
from judgeflow_devkit.stack import ledger, observe, services, setup, topology
from judgeflow_devkit.stack.processes import ProcessSet
from judgeflow_devkit.stack.report import StackOptions, StackReport
from judgeflow_devkit.stack.rest import AirflowRest

DAG_ID = "llm_judge__support"  # the suite of the triggered run and the backfill
SEARCH_DAG = "llm_judge__search"  # the suite scheduled on its upstream Asset
CONSUMER_DAG = "judgeflow_scores_consumer"
SEARCH_RUBRICS = ("faithfulness", "concision")
UPSTREAM_URI = "warehouse://stack/search_events"
SEARCH_ANSWERS = (
    "SELECT id, logged_at AS created_at, payload ->> 'query' AS question, payload ->> 'answer' AS response, "
    "payload ->> 'passages' AS context, payload ->> 'locale' AS locale FROM search_events WHERE kind = 'answer'"
)
WORKERS = ("worker-a", "worker-b")
TRIGGERED_DAY = dt.date(2026, 3, 1)  # the triggered run's logical date is the day after
BACKFILL_DAYS = (dt.date(2026, 3, 10), dt.date(2026, 3, 11), dt.date(2026, 3, 12))
DECOY_DAYS = (dt.date(2026, 3, 9), dt.date(2026, 3, 13))
TERMINAL = {"success", "failed"}
HOUR = dt.timedelta(hours=1)
RUN_DEADLINE_HOURS = 0.003  # 10.8 s: every run outlives it, so the deadline alert must fire


def run_stack(options: StackOptions, *, say: Callable[[str], None] = print) -> StackReport:
    """Run the whole scenario; never raises for a failed check (see ``report.failures``)."""
    report = StackReport(options=options)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="judgeflow-stack-"))
    log_dir = options.log_dir or workdir / "logs"
    report.log_dir = str(log_dir)
    processes = ProcessSet(log_dir)
    with ExitStack() as cleanup:
        cleanup.callback(processes.stop_all)  # a backstop; _run registers the stop that runs before the drops
        try:
            _run(options, report, workdir, processes, cleanup, say)
        except Exception as exc:  # a crash is a failed check with its reason, after everything is stopped
            report.failures.append(f"{type(exc).__name__}: {exc}")
            for service in processes.services:
                if not service.running():
                    report.failures.append(f"{service.name} exited; its log ends:\n{service.log_tail(15)}")
        finally:
            say("stopping every process this run started, by pid")
    report.seconds["total"] = time.monotonic() - started
    report.load_average = os.getloadavg()
    if not report.failures:  # kept for a post-mortem only when a check failed
        shutil.rmtree(workdir, ignore_errors=True)
        if options.log_dir is None:
            report.log_dir = ""
    return report


def _run(
    options: StackOptions,
    report: StackReport,
    workdir: Path,
    processes: ProcessSet,
    cleanup: ExitStack,
    say: Callable[[str], None],
) -> None:
    phase = _Phases(report, say)
    role = cleanup.enter_context(services.role_dropped_after(options.server_url))  # dropped after its database
    metadata_url = cleanup.enter_context(services.fresh_database(options.server_url))
    warehouse_url = cleanup.enter_context(services.fresh_database(options.warehouse_database_url, "jf_stack_wh"))
    # Registered after the databases: ExitStack unwinds in reverse, so processes stop before the drops.
    cleanup.callback(processes.stop_all)
    warehouse = create_engine(warehouse_url)
    cleanup.callback(warehouse.dispose)
    say(f"metadata database {metadata_url.rsplit('/', 1)[-1]}, warehouse {warehouse_url.rsplit('/', 1)[-1]}")

    seeded = ledger.seed_days(warehouse, [TRIGGERED_DAY], per_day=options.per_day, first_id=1, seed=31)
    seeded += ledger.seed_days(
        warehouse, [*BACKFILL_DAYS, *DECOY_DAYS], per_day=options.backfill_per_day, first_id=100_000, seed=41
    )
    say(f"seeded {seeded} support responses on {len(BACKFILL_DAYS) + len(DECOY_DAYS) + 1} days")
    now = dt.datetime.now(dt.UTC)  # an Asset-triggered run judges the 24 hours before it starts
    answers = ledger.seed_search(
        warehouse, count=options.search_answers, start=now - 20 * HOUR, end=now - HOUR, first_id=1_000_000, seed=51
    )
    say(f"seeded {answers} search assistant answers (JSON events) in the last 20 hours")

    redis_server = services.start_private_redis(processes)
    slack = cleanup.enter_context(SlackReceiver())
    endpoints = topology.StackEndpoints(
        airflow_home=workdir / "airflow",
        metadata_url=metadata_url,
        broker_url=redis_server.url(0),
        cache_url=redis_server.url(1),
        warehouse_url=warehouse_url,
        warehouse_role=role,
        emulator_url=f"http://127.0.0.1:{services.free_port()}",
        api_port=services.free_port(),
        dags_folder=workdir / "dags",
        include_dir=workdir / "include",
        worker_concurrency=options.worker_concurrency,
        slack_url=slack.url,
        run_deadline_hours=RUN_DEADLINE_HOURS,
    )
    endpoints.airflow_home.mkdir(parents=True)
    _write_suites(endpoints.include_dir, workdir, options)
    _write_dags(endpoints.dags_folder)
    password = topology.write_password_file(workdir / "passwords.json")
    stack_secrets = topology.StackSecrets.generate()
    env = topology.shared_env(endpoints, stack_secrets=stack_secrets, api_password_file=workdir / "passwords.json")

    with phase("judgeflow deploy init, twice (compose's airflow-init)"):
        _deploy_init_twice(report, env, endpoints, stack_secrets, options)
    with phase("start emulator, api-server, scheduler, dag-processor, triggerer, 2 celery workers"):
        _start_services(processes, env, endpoints, options)
        rest = AirflowRest(endpoints.api_url, username=topology.API_USER, password=password)
        cleanup.callback(rest.close)
        rest.wait_until_up(timeout_s=options.phase_timeout_s)
        healthy, why = setup.check_api_health(endpoints.api_port)
        report.check(healthy, f"compose's api-server healthcheck failed against the stack: {why}")
        _wait(lambda: rest.dag(DAG_ID) is not None, options.phase_timeout_s, "the DAG to be parsed", processes)
        import_errors = rest.import_errors()
        report.check(not import_errors, f"import errors: {import_errors}")
        for worker in WORKERS:
            _wait(_worker_ready(processes, worker), options.phase_timeout_s, f"{worker} to be ready", processes)

    with phase("the scheduler's own run of the support suite for today (nothing to judge)"):
        scheduled = _scheduled_run(rest, options.phase_timeout_s, processes)
    report.check(scheduled["state"] == "success", f"the support suite's scheduled run ended {scheduled['state']}")

    with phase("two suites at once: support triggered (REST API), search on its upstream Asset event"):
        logical_date = dt.datetime.combine(TRIGGERED_DAY + ledger.DAY, dt.time(), tzinfo=dt.UTC)
        run_id = rest.trigger(DAG_ID, logical_date=logical_date.isoformat(), conf={})
        say(f"triggered {run_id}")
        search_id = _load_upstream(rest, options.phase_timeout_s, processes)
        say(f"the upstream Asset's event started {search_id}")
        run, search = _wait_for_runs(
            rest, [(DAG_ID, run_id), (SEARCH_DAG, search_id)], options.phase_timeout_s, processes, on_poll=None
        )
    report.triggered_run = {k: run.get(k) for k in ("dag_run_id", "state", "logical_date", "start_date", "end_date")}
    report.search_run = {k: search.get(k) for k in ("dag_run_id", "state", "run_type", "start_date", "end_date")}
    report.check(run["state"] == "success", f"triggered run ended {run['state']}")
    report.check(search["state"] == "success", f"the search suite's run ended {search['state']}")
    _observe_triggered(report, rest, warehouse, run_id)
    _check_search(report, warehouse, search_id)
    _check_shared_limit(report, warehouse, [run_id, search_id], endpoints.emulator_url)
    _check_downstream(report, rest, {DAG_ID: run_id, SEARCH_DAG: search_id}, options.phase_timeout_s, processes)
    _check_deadline_alert(report, slack, run_id, options.phase_timeout_s)

    with phase("backfill over three days (airflow backfill create, rescore, Message Batches)"):
        _airflow(
            env,
            [
                "backfill", "create", "--dag-id", DAG_ID,
                "--from-date", (BACKFILL_DAYS[0] + ledger.DAY).isoformat(),
                "--to-date", (BACKFILL_DAYS[-1] + ledger.DAY).isoformat(),
                "--reprocess-behavior", "completed", "--max-active-runs", "3",
                # The README's backfill after a rubric change: rescore each day, at the batch price.
                "--dag-run-conf", json.dumps({"rubric": "helpfulness", "rescore": True, "mode": "batch"}),
            ],
        )  # fmt: skip
        _wait(lambda: len(rest.dag_runs(DAG_ID, run_type="backfill")) == 3, 60, "3 backfill runs", processes)
        backfill_ids = [r["dag_run_id"] for r in rest.dag_runs(DAG_ID, run_type="backfill")]
        states_seen: set[str] = set()

        def note_states() -> None:
            for backfill_id in backfill_ids:
                for ti in rest.task_instances(DAG_ID, backfill_id, task_id="score_batch"):
                    states_seen.add(str(ti.get("state")))

        runs = _wait_for_runs(
            rest, [(DAG_ID, b) for b in backfill_ids], options.phase_timeout_s, processes, on_poll=note_states
        )
    report.deferred_seen = "deferred" in states_seen
    _check_backfill(report, runs, warehouse)


def _deploy_init_twice(
    report: StackReport,
    env: dict[str, str],
    endpoints: topology.StackEndpoints,
    stack_secrets: topology.StackSecrets,
    options: StackOptions,
) -> None:
    """Compose's set-up command, twice; the second run must change nothing (its report and the databases)."""
    command = topology.init_command(endpoints, pool_slots=options.pool_slots)
    init_env = topology.init_env(env, endpoints, stack_secrets)
    first = setup.run_init(command, init_env)
    if first.returncode != 0:
        raise RuntimeError(f"judgeflow deploy init failed (exit {first.returncode}):\n{first.output}")
    before = setup.snapshot(endpoints.metadata_url, endpoints.warehouse_url, endpoints.warehouse_role)
    second = setup.run_init(command, init_env)
    after = setup.snapshot(endpoints.metadata_url, endpoints.warehouse_url, endpoints.warehouse_role)
    report.init_runs = [first.summary, second.summary]
    report.check(first.changed > 0, f"the first init changed nothing:\n{first.output}")
    report.check(second.returncode == 0 and second.changed == 0, f"the second init changed:\n{second.output}")
    report.check(before == after, f"the second init changed {setup.differences(before, after)}")


def _observe_triggered(report: StackReport, rest: AirflowRest, warehouse: Engine, run_id: str) -> None:
    spans = observe.spans_from_api(rest.task_instances(DAG_ID, run_id, task_id="score_batch"))
    sizes = ledger.batch_sizes(warehouse, f"{DAG_ID}/{run_id}")
    report.check(len(spans) == len(sizes) > 1, f"{len(spans)} score tasks ran for {len(sizes)} batches")
    report.workers = observe.worker_figures(spans, sizes)
    overlaps = observe.cross_worker_overlaps(spans)
    report.overlaps = len(overlaps)
    report.overlap_seconds = max((shared for _, _, shared in overlaps), default=0.0)
    report.scoring_seconds = observe.phase_seconds(spans)
    report.check({f.worker for f in report.workers} == set(WORKERS), f"score tasks ran on {report.workers}")
    report.check(bool(overlaps), "no two score tasks on different workers ran at the same time")
    day = ledger.count_day(warehouse, TRIGGERED_DAY)
    report.days.append(day)
    report.check(day.scored_once_each, f"triggered day not scored once each: {day}")
    report.check(day.score_run_ids == (run_id,), f"scores of {day.day} come from runs {day.score_run_ids}")


def _scheduled_run(rest: AirflowRest, timeout_s: float, processes: ProcessSet) -> dict[str, Any]:
    """The run the cron makes for today when the DAG first appears, waited for so that it does not
    hold the triggered run back (``max_active_runs`` 1) or share its measurements."""
    _wait(lambda: bool(rest.dag_runs(DAG_ID, run_type="scheduled")), timeout_s, "the scheduled run", processes)
    run_id = str(rest.dag_runs(DAG_ID, run_type="scheduled")[0]["dag_run_id"])
    return _wait_for_runs(rest, [(DAG_ID, run_id)], timeout_s, processes, on_poll=None)[0]


def _load_upstream(rest: AirflowRest, timeout_s: float, processes: ProcessSet) -> str:
    """Post the event the search application's log load would post; return the run it starts."""
    _wait(lambda: rest.asset_id(UPSTREAM_URI) is not None, timeout_s, f"the Asset {UPSTREAM_URI}", processes)
    asset_id = rest.asset_id(UPSTREAM_URI)
    assert asset_id is not None
    rest.create_asset_event(asset_id, extra={"loaded_by": "the judgeflow stack test"})
    _wait(lambda: bool(rest.dag_runs(SEARCH_DAG, run_type="asset_triggered")), 120, f"a {SEARCH_DAG} run", processes)
    return str(rest.dag_runs(SEARCH_DAG, run_type="asset_triggered")[0]["dag_run_id"])


def _check_search(report: StackReport, warehouse: Engine, run_id: str) -> None:
    """The search suite staged one sample and judged every sampled answer once under each rubric."""
    counted = ledger.count_suite_run(
        warehouse, run_key=f"{SEARCH_DAG}/{run_id}", run_id=run_id, rubrics=SEARCH_RUBRICS, answers=SEARCH_ANSWERS
    )
    report.search = counted
    report.check(counted.judged_once_each(SEARCH_RUBRICS), f"search answers not judged once per rubric: {counted}")
    share = counted.staged / counted.population if counted.population else 0.0
    report.check(0.3 < share < 0.7, f"the search suite staged {share:.0%} of its answers, not a 50% sample")


def _check_shared_limit(report: StackReport, warehouse: Engine, run_ids: list[str], emulator: str) -> None:
    """Both suites' runs together: no 429, at or under the account's rate, every request one uncached score."""
    stats = httpx.get(f"{emulator}/_emulator/stats", timeout=10, trust_env=False).json()
    report.api_requests = int(stats["requests_total"])
    report.http_429 = int(stats["by_status"].get("429", 0))
    busy = (stats["last_response_at"] or 0) - (stats["first_request_at"] or 0)
    report.api_per_second = report.api_requests / busy if busy > 0 else 0.0
    limit = report.options.rpm / 60
    report.check(report.http_429 == 0, f"the emulator answered {report.http_429} requests with 429")
    report.check(
        report.api_per_second <= limit * 1.02,
        f"the two suites together sent {report.api_per_second:.1f} requests/s, over the limit of {limit:.1f}/s",
    )
    report.judged_realtime = ledger.judged_without_cache(warehouse, run_ids)
    report.check(
        report.api_requests == report.judged_realtime,
        f"{report.api_requests} API requests for {report.judged_realtime} uncached scores: some response judged twice",
    )


def _check_downstream(
    report: StackReport, rest: AirflowRest, runs: dict[str, str], timeout_s: float, processes: ProcessSet
) -> None:
    """Each suite's scores Asset event, from these runs, triggered a successful run of the downstream DAG."""
    wanted = set(runs.items())
    found: dict[tuple[str, str], dict[str, Any]] = {}

    def seen() -> bool:
        report.downstream_runs = []
        for run in rest.dag_runs(CONSUMER_DAG, run_type="asset_triggered"):
            events = rest.upstream_asset_events(CONSUMER_DAG, run["dag_run_id"])
            sources = [(str(e["source_dag_id"]), str(e["source_run_id"])) for e in events]
            found.update({src: {**e, "consumer_state": run["state"]} for src, e in zip(sources, events, strict=True)})
            report.downstream_runs.append({"dag_run_id": run["dag_run_id"], "state": run["state"], "from": sources})
        return wanted <= set(found) and all(found[w]["consumer_state"] in TERMINAL for w in wanted)

    try:
        _wait(seen, min(timeout_s, 180.0), f"{CONSUMER_DAG} runs on both suites' score events", processes)
    except TimeoutError as exc:
        report.failures.append(f"{exc}; seen: {report.downstream_runs}")
        return
    for dag_id, run_id in wanted:
        event = found[(dag_id, run_id)]
        rows = int((event.get("extra") or {}).get("rows_written", 0))
        report.check(rows > 0, f"the scores Asset event of {dag_id} says {rows} rows written: {event.get('extra')}")
        report.check(event["consumer_state"] == "success", f"{CONSUMER_DAG} ended {event['consumer_state']}")


def _check_deadline_alert(report: StackReport, slack: SlackReceiver, run_id: str, timeout_s: float) -> None:
    """The DAG's deadline, run by the scheduler and the triggerer: the run outlived it, so on-call heard.

    The deadline is set to seconds here (``RUN_DEADLINE_HOURS``) so that every run passes it; the run
    itself must still succeed, and the message must name it."""
    expected = f"run {run_id} has not finished by its deadline"
    deadline = time.monotonic() + min(timeout_s, 120.0)
    while time.monotonic() < deadline:
        texts = [str(p.get("text", "")) for p in slack.payloads if isinstance(p, dict)]
        if any(expected in text for text in texts):
            break
        time.sleep(1.0)
    texts = [str(p.get("text", "")) for p in slack.payloads if isinstance(p, dict)]
    report.deadline_alerts = sum("has not finished by its deadline" in text for text in texts)
    report.check(any(expected in text for text in texts), f"no deadline alert for {run_id} in Slack: {texts}")


def _check_backfill(report: StackReport, runs: list[dict[str, Any]], warehouse: Engine) -> None:
    report.backfill_runs = [{k: r.get(k) for k in ("dag_run_id", "state", "logical_date")} for r in runs]
    by_day = {dt.datetime.fromisoformat(r["logical_date"]).date() - ledger.DAY: r for r in runs}
    report.check(sorted(by_day) == list(BACKFILL_DAYS), f"backfill runs judge {sorted(by_day)}")
    report.check(all(r["state"] == "success" for r in runs), f"backfill runs: {report.backfill_runs}")
    report.check(report.deferred_seen, "no backfill score task was seen deferred to the triggerer")
    run_ids = [r["dag_run_id"] for r in runs]
    report.judged_batch = ledger.judged_without_cache(warehouse, run_ids)
    report.batch_requests = ledger.batch_requests(warehouse, DAG_ID, run_ids)
    report.check(
        report.batch_requests == report.judged_batch > 0,
        f"{report.batch_requests} batch requests for {report.judged_batch} uncached scores",
    )
    for day in BACKFILL_DAYS:
        counted = ledger.count_day(warehouse, day)
        report.days.append(counted)
        report.check(counted.scored_once_each, f"backfill day not scored once each: {counted}")
        expected = (by_day[day]["dag_run_id"],) if day in by_day else ()
        report.check(counted.score_run_ids == expected, f"scores of {day} come from runs {counted.score_run_ids}")
    for day in DECOY_DAYS:
        counted = ledger.count_day(warehouse, day)
        report.days.append(counted)
        report.check(counted.scored == 0 and counted.errors == 0, f"a day no run should judge was judged: {counted}")


class _Phases:
    """Times and announces each phase; the times go into the report."""

    def __init__(self, report: StackReport, say: Callable[[str], None]) -> None:
        self.report, self.say = report, say

    def __call__(self, name: str) -> _Phase:
        return _Phase(name, self.report, self.say)


class _Phase:
    def __init__(self, name: str, report: StackReport, say: Callable[[str], None]) -> None:
        self.name, self.report, self.say = name, report, say

    def __enter__(self) -> None:
        self.say(f"== {self.name}")
        self.started = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        seconds = time.monotonic() - self.started
        self.report.seconds[self.name] = seconds
        self.say(f"   {self.name}: {seconds:.1f} s")


def _start_services(
    processes: ProcessSet, env: dict[str, str], endpoints: topology.StackEndpoints, options: StackOptions
) -> None:
    emulator_port = endpoints.emulator_url.rsplit(":", 1)[-1]
    judgeflow_dev = str(Path(topology.airflow_bin()).with_name("judgeflow-dev"))
    emulator = [judgeflow_dev, "emulator", "--port", emulator_port, "--latency-median", str(options.latency_median_s)]
    emulator += ["--latency-sigma", "0.3", "--rpm", str(options.rpm)]
    emulator += ["--batch-processing-seconds", str(options.batch_processing_s)]
    processes.start("emulator", emulator, env)
    for name, args in topology.SERVICE_COMMANDS.items():
        own_port = services.free_port() if name == "triggerer" else None
        processes.start(name, [topology.airflow_bin(), *args], topology.service_env(env, log_port=own_port))
    for worker in WORKERS:
        worker_env = topology.service_env(env, worker_name=worker, log_port=services.free_port())
        processes.start(worker, topology.worker_command(worker), worker_env)


def _wait_for_runs(
    rest: AirflowRest,
    run_ids: list[tuple[str, str]],
    timeout_s: float,
    processes: ProcessSet,
    on_poll: Callable[[], None] | None,
) -> list[dict[str, Any]]:
    """Wait for each ``(dag_id, run_id)`` to end; their runs, in the same order."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [rest.dag_run(dag_id, run_id) for dag_id, run_id in run_ids]
        if on_poll is not None:
            on_poll()
        if all(run["state"] in TERMINAL for run in runs):
            return runs
        processes.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs still not done after {timeout_s:.0f} s: {[r['state'] for r in runs]}")
        time.sleep(1.0)


def _wait(condition: Callable[[], bool], timeout_s: float, what: str, processes: ProcessSet) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        processes.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")
        time.sleep(0.5)


def _worker_ready(processes: ProcessSet, name: str) -> Callable[[], bool]:
    """True once Celery logged ``<name>@<host> ready.``: it consumes from the broker."""
    service = next(s for s in processes.services if s.name == name)
    return lambda: " ready." in service.log_path.read_text(encoding="utf-8", errors="replace")


def _airflow(env: dict[str, str], args: list[str]) -> None:
    result = subprocess.run([topology.airflow_bin(), *args], env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")


def _write_suites(include: Path, workdir: Path, options: StackOptions) -> None:
    """The deployment's include folder: shared defaults and two suites sharing the warehouse (under
    different rubrics) and the account's rate limit, each with its own Slack connection id."""
    defaults = {
        "rubric_dir": str(topology.PROJECT_ROOT / "include" / "rubrics"),
        "embedded_warehouse_path": str(workdir / "unused.sqlite"),
        # A backlog of one day is the interval itself: each run judges exactly its day (the checks rely on it).
        "batching": {"batch_size": options.batch_size, "backlog_days": 1},
        "judge": {"concurrency": options.judge_concurrency},
        "limits": {"requests_per_minute": options.rpm},
        "batch_mode": {"poll_interval_s": 2},
        "alerts": {"report_folder": str(workdir / "reports"), "min_samples": 5},
    }
    support = {"description": "the support bot's answers (table app_responses)", "owner": "support-ml"}
    search = {
        "description": "the search assistant's answers (JSON events)",
        "owner": "search-team",
        "source": {"query": SEARCH_ANSWERS, "segment_columns": ["locale"]},
        "rubrics": list(SEARCH_RUBRICS),
        "sampling": {"rate": options.search_sample_rate, "by": "locale", "min_per_segment": 5},
        "schedule": {"asset": UPSTREAM_URI},
        "connections": {"slack": "slack_search"},
    }
    (include / "suites").mkdir(parents=True)
    (include / "judgeflow.yaml").write_text(yaml.safe_dump(defaults), encoding="utf-8")
    (include / "suites" / "support.yaml").write_text(yaml.safe_dump(support), encoding="utf-8")
    (include / "suites" / "search.yaml").write_text(yaml.safe_dump(search), encoding="utf-8")


CONSUMER = '''"""A downstream DAG (a dbt model, a report) that Airflow runs when a suite's scores are fresh."""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, get_current_context, task

SUPPORT = Asset(uri="judgeflow://support/judge_scores", name="judgeflow.support.scores", group="judgeflow")
SEARCH = Asset(uri="judgeflow://search/judge_scores", name="judgeflow.search.scores", group="judgeflow")


@dag(dag_id="{dag_id}", schedule=SUPPORT | SEARCH, start_date=pendulum.datetime(2026, 1, 1), catchup=False)
def scores_consumer() -> None:
    @task
    def read_fresh_scores() -> int:
        events = get_current_context()["triggering_asset_events"]
        for asset, fresh in events.items():
            for event in fresh:
                print(asset, event.extra)
        return sum(len(fresh) for fresh in events.values())

    read_fresh_scores()


scores_consumer()
'''


def _write_dags(folder: Path) -> None:
    """The project's DAG files (linked, as a deployment would mount them) and the downstream DAG."""
    folder.mkdir(parents=True)
    for dag_file in (topology.PROJECT_ROOT / "dags").glob("*.py"):
        (folder / dag_file.name).symlink_to(dag_file)
    (folder / f"{CONSUMER_DAG}.py").write_text(CONSUMER.replace("{dag_id}", CONSUMER_DAG), encoding="utf-8")


def _secret() -> str:
    import secrets

    return secrets.token_urlsafe(32)
