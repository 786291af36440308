"""One function per DAG task; the only module that knows the order of the steps.

Each function takes the settings file and the Airflow task context, turns them into typed objects
once, and calls down into the library. XCom carries batch descriptors and counts, never texts.

    extract_responses -> score_batch (mapped) -> summarize_run -> compare_scores -> alert_on_call
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any

from judgeflow.config import RunParams, Settings, load_settings, parse_run_params
from judgeflow.connections import warehouse_url
from judgeflow.cost_estimate import CostEstimate, price_staged
from judgeflow.errors import WarehouseError
from judgeflow.judge.caching import prefix_report
from judgeflow.records import BatchRef
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a task needs to know about its DAG run, read once from the Airflow context."""

    dag_id: str
    run_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    params: RunParams

    @property
    def run_key(self) -> str:
        return f"{self.dag_id}/{self.run_id}"

    @classmethod
    def from_airflow(cls, context: Any) -> RunContext:
        """The day to judge.

        Airflow 3's ``@daily`` (a cron trigger) gives zero-length data intervals, and manual or
        asset-triggered runs may have none: then the run judges the day before its logical date
        (or, without one, before ``run_after``). A real interval (start < end) is used as it is.
        """
        dag_run = context["dag_run"]
        start = context.get("data_interval_start")
        end = context.get("data_interval_end")
        if start is None or end is None or start >= end:
            end = context.get("logical_date") or dag_run.run_after
            start = end - dt.timedelta(days=1)
        return cls(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            interval_start=_utc(start),
            interval_end=_utc(end),
            params=parse_run_params(dict(context.get("params") or {})),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """Settings, rubric and warehouse for one task of one run."""

    run: RunContext
    settings: Settings
    rubric: Rubric
    warehouse: Warehouse

    @classmethod
    def open(cls, settings_path: str, context: Any) -> Job:
        run = RunContext.from_airflow(context)
        settings = load_settings_for(settings_path)
        rubric = load_rubric(settings.rubric_dir, run.params.rubric or settings.rubric)
        url = warehouse_url(settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path)
        warehouse = Warehouse.from_url(url, settings.source)
        return cls(run, settings, rubric, warehouse)


def load_settings_for(settings_path: str) -> Settings:
    """``JUDGEFLOW_SETTINGS`` in the worker's environment overrides the DAG's settings file."""
    return load_settings(os.environ.get("JUDGEFLOW_SETTINGS") or settings_path)


def extract_responses(settings_path: str, context: Any) -> list[dict[str, Any]]:
    """Stage the run's unscored responses and return one descriptor per batch."""
    job = Job.open(settings_path, context)
    job.warehouse.ensure_schema()
    run = job.run
    count = stage_run(
        job.warehouse,
        job.settings,
        job.rubric,
        run_key=run.run_key,
        start=run.interval_start,
        end=run.interval_end,
        rescore=run.params.rescore,
        limit=run.params.limit,
    )
    batches = job.warehouse.plan_batches(run.run_key)
    log.info("rubric %s: %s", job.rubric.name, prefix_report(job.rubric).describe())
    log.info(
        "rubric %s %s, interval %s..%s: %d responses to judge in %d batches",
        job.rubric.name,
        job.rubric.version_key,
        run.interval_start,
        run.interval_end,
        count,
        len(batches),
    )
    estimate = estimate_staged_cost(job)
    log.info("estimated cost: %s", estimate.describe())
    if run.params.dry_run:
        job.warehouse.discard_run_items(run.run_key)
        log.info("dry run: nothing judged, nothing spent")
        return []
    _refuse_over_backfill_cap(job, estimate)
    return [batch.to_xcom() for batch in batches]


def stage_run(
    warehouse: Warehouse,
    settings: Settings,
    rubric: Rubric,
    *,
    run_key: str,
    start: dt.datetime,
    end: dt.datetime,
    rescore: bool,
    limit: int | None,
    backlog: bool = True,
) -> int:
    """Freeze a run's work list: the interval, plus (unless ``rescore``, or ``backlog`` is off) the
    older responses still waiting, as far back as ``batching.backlog_days``."""
    batching = settings.batching
    backlog_start = None
    if not backlog:
        backlog_start = start  # nothing older than the interval
    elif batching.backlog_days:
        backlog_start = end - dt.timedelta(days=batching.backlog_days)
    return warehouse.stage_run_items(
        run_key=run_key,
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        interval_start=start,
        interval_end=end,
        backlog_start=backlog_start,
        rescore=rescore,
        limit=limit,
        batch_size=batching.batch_size,
        max_batches=batching.max_batches,
    )


def estimate_staged_cost(job: Job) -> CostEstimate:
    """The price of the run's staged work list, from SQL aggregates and the price table."""
    mode = job.run.params.mode or job.settings.mode
    return price_staged(job.warehouse, job.run.run_key, job.rubric, job.settings, mode=mode)


def _refuse_over_backfill_cap(job: Job, estimate: CostEstimate) -> None:
    """A rescore (backfill) run estimated over ``budget.max_backfill_cost_usd`` fails before spending."""
    from airflow.sdk.exceptions import AirflowFailException

    cap = job.settings.budget.max_backfill_cost_usd
    if not job.run.params.rescore or cap is None or estimate.cost_usd <= cap:
        return
    job.warehouse.discard_run_items(job.run.run_key)
    raise AirflowFailException(
        f"refused: rescoring this run is estimated at ${estimate.cost_usd:,.2f}, over "
        f"budget.max_backfill_cost_usd ${cap:,.2f} ({estimate.describe()}); nothing was judged. "
        "Raise the cap, narrow the dates, use mode=batch, or set limit."
    )


def score_batch(settings_path: str, batch: dict[str, Any], context: Any) -> dict[str, Any]:
    """Judge one batch and upsert its results; a terminal API error fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from judgeflow.cache import open_cache
    from judgeflow.engine.budget import budget_caps
    from judgeflow.engine.session import judge_stream

    job = Job.open(settings_path, context)
    ref = BatchRef.from_xcom(batch)
    settings, rubric, run = job.settings, job.rubric, job.run
    cache = open_cache(settings.cache, redis_conn_id=settings.connections.cache)
    log.info("%s, rubric %s %s, cache: %s", ref.label, rubric.name, rubric.version_key, cache.describe())
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    run_spent, day_spent = job.warehouse.spent_usd(
        dag_run_id=run.run_id, day_start=today, day_end=today + dt.timedelta(days=1)
    )
    caps = budget_caps(
        settings.budget, run_key=run.run_key, day=f"{today:%Y-%m-%d}", run_spent=run_spent, day_spent=day_spent
    )
    chunks = job.warehouse.read_batch(
        ref,
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        dag_run_id=run.run_id,
        rescore=run.params.rescore,
    )
    session = judge_stream(
        chunks,
        settings=settings,
        rubric=rubric,
        cache=cache,
        sink=job.warehouse,
        dag_run_id=run.run_id,
        budget_caps=caps,
    )
    try:
        totals = asyncio.run(session)
    finally:
        cache.close()
    log.info("%s done: %s", ref.label, totals.to_json())
    if totals.stopped:
        raise AirflowFailException(f"judge API refused the run, not retrying: {totals.stopped}")
    return totals.to_json()


def summarize_run(settings_path: str, batch_results: list[dict[str, Any]], context: Any) -> dict[str, Any]:
    """Totals from the warehouse itself (not from what tasks said), stored in ``judge_runs``."""
    job = Job.open(settings_path, context)
    run = job.run
    if run.params.dry_run:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("dry run: the estimate is in extract_responses' log; nothing to summarize")
    totals = job.warehouse.run_totals(run.run_key, run.run_id, job.rubric.name, job.rubric.version_key)
    counters = ("requests", "retries", "rate_limited", "budget_refused")
    calls = {k: sum(int(r.get(k) or 0) for r in batch_results or []) for k in counters}
    hit_ratio = totals["from_cache"] / totals["scored"] if totals["scored"] else 0.0
    summary = {**totals, **calls, "cache_hit_ratio": round(hit_ratio, 4), "batches": len(batch_results or [])}
    job.warehouse.record_run(
        {
            "run_key": run.run_key,
            "dag_id": run.dag_id,
            "dag_run_id": run.run_id,
            "rubric_name": job.rubric.name,
            "rubric_version": job.rubric.version_key,
            "interval_start": run.interval_start,
            "interval_end": run.interval_end,
            **{k: totals[k] for k in ("extracted", "scored", "from_cache", "errors", "unaccounted")},
            "input_tokens": totals["input_tokens"],
            "output_tokens": totals["output_tokens"],
            "cost_usd": totals["cost_usd"],
            "details": summary,
            "finished_at": dt.datetime.now(dt.UTC),
        }
    )
    log.info("run summary: %s", summary)
    _refresh_daily_scores(job)
    if totals["left_for_budget"]:
        log.warning("budget cap reached: %d responses left for the next run", totals["left_for_budget"])
    if totals["unaccounted"]:
        log.error("%d staged responses have neither a score nor an error row", totals["unaccounted"])
    return summary


def compare_scores(settings_path: str, context: Any) -> dict[str, Any]:
    """This interval against the baseline days before it, overall and per criterion."""
    from judgeflow.regression import compare_windows, rolling_average, root_causes

    job = Job.open(settings_path, context)
    alerts, run = job.settings.alerts, job.run
    lookback = max(alerts.baseline_days, alerts.rolling_days)
    frame = job.warehouse.scores_frame(
        rubric_name=job.rubric.name,
        rubric_version=job.rubric.version_key,
        criteria=job.rubric.criterion_names,
        start=run.interval_start - dt.timedelta(days=lookback),
        end=run.interval_end,
    )
    report = compare_windows(
        frame,
        criteria=job.rubric.criterion_names,
        current_start=run.interval_start,
        current_end=run.interval_end,
        baseline_days=alerts.baseline_days,
        alpha=alerts.alpha,
        min_samples=alerts.min_samples,
        min_drop=alerts.min_drop,
        segment_columns=job.warehouse.segment_names(),
    )
    pulls = root_causes(
        frame,
        current_start=run.interval_start,
        current_end=run.interval_end,
        segment_columns=job.warehouse.segment_names(),
    )
    average, count = rolling_average(frame, end=run.interval_end, days=alerts.rolling_days)
    job.warehouse.record_comparisons(
        run_key=run.run_key,
        rubric_name=job.rubric.name,
        rubric_version=job.rubric.version_key,
        rows=report.to_json()["comparisons"],
    )
    log.info(
        "rolling %d-day average %s over %d scores; regressions: %s",
        alerts.rolling_days,
        average,
        count,
        [r.metric for r in report.regressions],
    )
    pulling_down = [p.to_json() for p in pulls if p.pull < 0][:3]
    report_url = _write_report(job, frame, report)
    return {
        "report": report.to_json(),
        "rolling_average": average,
        "rolling_count": count,
        "pulls": pulling_down,
        "report_url": report_url,
    }


def alert_on_call(
    settings_path: str, summary: dict[str, Any], comparison: dict[str, Any], context: Any
) -> dict[str, Any]:
    """Post to Slack when quality or judge health needs a person; Slack trouble never fails the run.

    A regression on-call already heard about stays quiet until it worsens or recovers. What on-call
    knows is saved only after Slack took the message, so an outage never swallows an alert."""
    import dataclasses

    from judgeflow.alert_state import plan_alerts
    from judgeflow.alerts import (
        AlertContext,
        airflow_run_url,
        build_alert_blocks,
        decide_alert,
        quality_differences,
        quality_findings,
        send_alert,
    )
    from judgeflow.regression import RegressionReport

    job = Job.open(settings_path, context)
    run, alerts = job.run, job.settings.alerts
    ctx = AlertContext(
        dag_id=run.dag_id,
        run_id=run.run_id,
        rubric_name=job.rubric.name,
        rubric_version=job.rubric.version_key,
        interval_start=run.interval_start,
        interval_end=run.interval_end,
        run_url=airflow_run_url(alerts.airflow_base_url, dag_id=run.dag_id, run_id=run.run_id),
        extracted=int(summary["extracted"]),
        scored=int(summary["scored"]),
        from_cache=int(summary["from_cache"]),
        errors=int(summary["errors"]),
        cost_usd=float(summary["cost_usd"]),
        rolling_average=comparison["rolling_average"],
        rolling_count=int(comparison["rolling_count"]),
        threshold=alerts.min_rolling_average,
        report=RegressionReport.from_json(comparison["report"]),
        left_for_budget=int(summary.get("left_for_budget", 0)),
        malformed=int(summary.get("malformed", 0)),
        max_error_rate=alerts.max_judge_error_rate,
        budget_usd=job.settings.budget.max_cost_usd_per_run,
        report_url=str(comparison.get("report_url") or ""),
    )
    ctx = dataclasses.replace(ctx, where=_segment_examples(job, comparison.get("pulls", [])))
    known = job.warehouse.open_regressions(job.rubric.name, job.rubric.version_key)
    plan = plan_alerts(
        known,
        quality_findings(ctx),
        differences=quality_differences(ctx),
        worsen_by=alerts.min_drop,
        recover_within=alerts.min_drop / 2,
    )
    ctx = dataclasses.replace(ctx, plan=plan)
    decision = decide_alert(ctx)
    if not decision.should_alert:
        log.info("no alert: nothing new for on-call (still open: %s)", list(plan.ongoing) or "none")
        return {"alerted": False, "sent": False, "reasons": [], "ongoing": list(plan.ongoing)}
    text, blocks = build_alert_blocks(ctx, decision)
    sent = send_alert(conn_id=job.settings.connections.slack, text=text, blocks=blocks)
    if sent:
        job.warehouse.save_open_regressions(
            job.rubric.name, job.rubric.version_key, plan.open_after(known, run.interval_end)
        )
    return {"alerted": True, "sent": sent, "reasons": list(decision.reasons), "ongoing": list(plan.ongoing)}


def _refresh_daily_scores(job: Job) -> None:
    """The UI view's daily aggregates for the days this run touched. A database failure is logged and
    does not fail the run (those days stay stale until a rerun or ``judgeflow rollup``); a bug fails the task."""
    from judgeflow.daily_scores import refresh_for_run

    try:
        refresh_for_run(
            job.warehouse, run_key=job.run.run_key, rubric_name=job.rubric.name, rubric_version=job.rubric.version_key
        )
    except WarehouseError:
        log.exception("could not refresh judge_daily_scores for run %s", job.run.run_key)


def _write_report(job: Job, frame: Any, report: Any) -> str:
    """The run's HTML report; a failure to write it is logged, never fails the comparison."""
    from judgeflow.report import write_run_report

    alerts = job.settings.alerts
    try:
        url = write_run_report(
            scores=frame,
            report=report,
            criteria=job.rubric.criterion_names,
            folder=alerts.report_folder,
            run_key=job.run.run_key,
            title=f"judgeflow: {job.rubric.name} {job.rubric.version_key}, {job.run.interval_start:%Y-%m-%d}",
        )
    except Exception:
        log.exception("could not write the run report to %s", alerts.report_folder)
        return ""
    if alerts.report_base_url:
        url = alerts.report_base_url.rstrip("/") + "/" + url.rstrip("/").split("/")[-2] + "/index.html"
    log.info("report: %s", url)
    return url


def _segment_examples(job: Job, pulls: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The segments pulling the average down, each with its worst response and the judge's reason."""
    from judgeflow.alerts import SegmentExample

    worst = [(p, p["worst"][0]) for p in pulls if p.get("worst")]
    reasons = job.warehouse.rationales(
        [w["response_id"] for _, w in worst], rubric_name=job.rubric.name, rubric_version=job.rubric.version_key
    )
    return tuple(
        SegmentExample(
            segment=p["segment"],
            n=int(p["n"]),
            mean=float(p["mean"]),
            pull=float(p["pull"]),
            response_id=str(w["response_id"]),
            score=float(w["score"]),
            rationale=reasons.get(str(w["response_id"]), ""),
        )
        for p, w in worst
    )


def _utc(value: dt.datetime) -> dt.datetime:
    """A plain ``datetime`` in UTC: pendulum's loses its zone in arithmetic, which pandas refuses."""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(aware.timestamp(), tz=dt.UTC)


def calibrate_rubric(settings_path: str, context: Any) -> dict[str, Any]:
    """Check the judge against the rubric's human golden set before anything is scored under it.

    Calibrates when due (see :mod:`judgeflow.calibration_gate`); a version below the floor, or one
    whose canaries steered the judge, fails the task without retries, so no score is made under it.
    A drifting judge alerts on-call and does not fail the run."""
    from airflow.sdk.exceptions import AirflowFailException

    from judgeflow.alerts import send_alert
    from judgeflow.calibration_gate import GateAction, JudgeStopped, drift_message, gate
    from judgeflow.calibration_store import CalibrationStore

    job = Job.open(settings_path, context)
    settings, rubric = job.settings, job.rubric
    if job.run.params.dry_run:
        log.info(
            "dry run: rubric %s %s is not calibrated now (a real run does, when due)", rubric.name, rubric.version_key
        )
        return {"action": "dry_run", "drift": []}
    store = CalibrationStore(job.warehouse.engine)
    try:
        outcome = asyncio.run(gate(settings, rubric, store, now=dt.datetime.now(dt.UTC)))
    except JudgeStopped as exc:
        raise AirflowFailException(str(exc)) from exc
    if outcome.action is GateAction.NO_GOLDEN_SET:
        log.warning("%s (calibration is opt-in per rubric; calibration.required makes it mandatory)", outcome.message)
    else:
        log.info("calibration of rubric %s %s:\n%s", rubric.name, rubric.version_key, outcome.message)
    if outcome.drift:
        text, blocks = drift_message(outcome, tolerance=settings.calibration.drift_tolerance)
        log.warning("%s", text)
        send_alert(conn_id=settings.connections.slack, text=text, blocks=blocks)
    if outcome.refusal:
        raise AirflowFailException(f"rubric {rubric.name} {rubric.version_key} may not score: {outcome.refusal}")
    return {"action": str(outcome.action), "drift": [d.criterion for d in outcome.drift]}
