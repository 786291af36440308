"""One function per DAG task; the only module that knows the order of the steps.

Each function opens its :class:`~judgeflow.tasks.job.Job` once (settings, rubric, warehouse), calls
down into the concern folders, and closes the job when the task ends. XCom carries batch
descriptors and counts, never texts.

    calibrate_rubric -> extract_responses -> score_batch (mapped) -> summarize_run
        -> compare_scores -> alert_on_call
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Any

from judgeflow.errors import WarehouseError
from judgeflow.records import BatchRef
from judgeflow.rubrics.estimate import CostEstimate, price_staged
from judgeflow.tasks.job import Job, RunContext

log = logging.getLogger(__name__)


def calibrate_rubric(settings_path: str, context: Any) -> dict[str, Any]:
    """Check the judge against the rubric's human golden set before anything is scored under it.

    Calibrates when due (see :mod:`judgeflow.rubrics.gate`); a version below the floor, or one
    whose canaries steered the judge, fails the task without retries, so no score is made under it.
    A drifting judge alerts on-call and does not fail the run."""
    run = RunContext.from_airflow(context)
    if run.params.dry_run:
        log.info("dry run: the rubric is not calibrated now (a real run does, when due)")
        return {"action": "dry_run", "drift": []}
    with Job.open(settings_path, context) as job:
        return _calibrate(job)


def _calibrate(job: Job) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException

    from judgeflow.judging.client import judge_endpoint
    from judgeflow.quality.alerts import send_alert
    from judgeflow.rubrics.gate import GateAction, JudgeStopped, drift_message, gate
    from judgeflow.storage.calibrations import CalibrationStore

    settings, rubric = job.settings, job.rubric
    job.warehouse.ensure_schema()  # the migrations' revision (and the source's id type) before any judging
    store = CalibrationStore(job.warehouse.engine)
    try:
        endpoint = asyncio.run(judge_endpoint(settings.connections.anthropic))
        outcome = asyncio.run(gate(settings, rubric, store, endpoint=endpoint, now=dt.datetime.now(dt.UTC)))
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


def extract_responses(settings_path: str, context: Any) -> list[dict[str, Any]]:
    """Stage the run's unscored responses and return one descriptor per batch."""
    with Job.open(settings_path, context) as job:
        return _extract(job)


def _extract(job: Job) -> list[dict[str, Any]]:
    from judgeflow.judging.prompt_cache import prefix_report

    run, warehouse = job.run, job.warehouse
    warehouse.ensure_schema()
    count = warehouse.stage_run(
        run_key=run.run_key,
        rubric=job.rubric,
        start=run.interval_start,
        end=run.interval_end,
        rescore=run.params.rescore,
        limit=run.params.limit,
        batching=job.settings.batching,
    )
    batches = warehouse.plan_batches(run.run_key)
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
    estimate = price_staged(warehouse, run.run_key, job.rubric, job.settings, mode=job.mode)
    log.info("estimated cost: %s", estimate.describe())
    if run.params.dry_run:
        warehouse.discard_run_items(run.run_key)
        log.info("dry run: nothing judged, nothing spent")
        return []
    _refuse_over_backfill_cap(job, estimate)
    return [batch.to_xcom() for batch in batches]


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
    """Judge one batch in realtime in a task of its own (benchmarks and tests call this directly)."""
    with Job.open(settings_path, context) as job:
        return score_realtime(job, batch)


def score_realtime(job: Job, batch: dict[str, Any]) -> dict[str, Any]:
    """Judge one batch and upsert its results; a terminal API error fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from judgeflow.judging.session import judge_stream

    ref = BatchRef.from_xcom(batch)
    rubric, run = job.rubric, job.run
    log.info("%s, rubric %s %s, cache: %s", ref.label, rubric.name, rubric.version_key, job.cache.describe())
    session = judge_stream(
        read_batch(job, ref),
        settings=job.settings,
        rubric=rubric,
        cache=job.cache,
        sink=job.warehouse,
        dag_run_id=run.run_id,
        budget_caps=job.budget_caps(),
    )
    totals = asyncio.run(session)
    log.info("%s done: %s", ref.label, totals.to_json())
    if totals.stopped:
        raise AirflowFailException(f"judge API refused the run, not retrying: {totals.stopped}")
    return totals.to_json()


def read_batch(job: Job, ref: BatchRef, *, skip_errored: bool = False) -> Any:
    """The batch's responses not yet scored by this run (or, unless rescoring, by any run); with
    ``skip_errored``, also not yet given up on by this run."""
    return job.warehouse.read_batch(
        ref,
        rubric_name=job.rubric.name,
        rubric_version=job.rubric.version_key,
        dag_run_id=job.run.run_id,
        rescore=job.run.params.rescore,
        skip_errored=skip_errored,
    )


def summarize_run(settings_path: str, batch_results: list[dict[str, Any]], context: Any) -> dict[str, Any]:
    """Totals from the warehouse itself (not from what tasks said), stored in ``judge_runs``."""
    if RunContext.from_airflow(context).params.dry_run:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("dry run: the estimate is in extract_responses' log; nothing to summarize")
    with Job.open(settings_path, context) as job:
        return _summarize(job, batch_results)


def _summarize(job: Job, batch_results: list[dict[str, Any]]) -> dict[str, Any]:
    run, rubric = job.run, job.rubric
    totals = job.warehouse.run_totals(run.run_key, run.run_id, rubric.name, rubric.version_key)
    totals["invalid_null_id"] = job.warehouse.null_ids(run.interval_start, run.interval_end)
    counters = ("requests", "retries", "rate_limited", "budget_refused")
    calls = {k: sum(int(r.get(k) or 0) for r in batch_results or []) for k in counters}
    hit_ratio = totals["from_cache"] / totals["scored"] if totals["scored"] else 0.0
    summary = {**totals, **calls, "cache_hit_ratio": round(hit_ratio, 4), "batches": len(batch_results or [])}
    job.warehouse.record_run(
        {
            "run_key": run.run_key,
            "dag_id": run.dag_id,
            "dag_run_id": run.run_id,
            "rubric_name": rubric.name,
            "rubric_version": rubric.version_key,
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
    if totals["invalid_null_id"]:
        cfg = job.settings.source
        log.error(
            "%d responses of the interval in %s have a NULL %s: invalid input, not judged (judge_runs.details)",
            totals["invalid_null_id"],
            cfg.table,
            cfg.id_column,
        )
    return summary


def _refresh_daily_scores(job: Job) -> None:
    """The UI view's daily aggregates for the days this run touched. A database failure is logged and
    does not fail the run (those days stay stale until a rerun or ``judgeflow rollup``); a bug fails the task."""
    from judgeflow.storage.daily_scores import refresh_for_run

    try:
        refresh_for_run(
            job.warehouse, run_key=job.run.run_key, rubric_name=job.rubric.name, rubric_version=job.rubric.version_key
        )
    except WarehouseError:
        log.exception("could not refresh judge_daily_scores for run %s", job.run.run_key)


def compare_scores(settings_path: str, context: Any) -> dict[str, Any]:
    """This interval against the baseline days before it, overall and per criterion."""
    with Job.open(settings_path, context) as job:
        return _compare(job)


def _compare(job: Job) -> dict[str, Any]:
    from judgeflow.quality.regression import compare_windows, rolling_average, root_causes

    alerts, run, rubric = job.settings.alerts, job.run, job.rubric
    lookback = max(alerts.baseline_days, alerts.rolling_days)
    frame = job.warehouse.scores_frame(
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        criteria=rubric.criterion_names,
        start=run.interval_start - dt.timedelta(days=lookback),
        end=run.interval_end,
    )
    segments = job.warehouse.segment_names()
    report = compare_windows(
        frame,
        criteria=rubric.criterion_names,
        current_start=run.interval_start,
        current_end=run.interval_end,
        baseline_days=alerts.baseline_days,
        alpha=alerts.alpha,
        min_samples=alerts.min_samples,
        min_drop=alerts.min_drop,
        segment_columns=segments,
    )
    pulls = root_causes(frame, current_start=run.interval_start, current_end=run.interval_end, segment_columns=segments)
    average, count = rolling_average(frame, end=run.interval_end, days=alerts.rolling_days)
    job.warehouse.alerts.record_comparisons(
        run_key=run.run_key,
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        rows=report.to_json()["comparisons"],
    )
    log.info(
        "rolling %d-day average %s over %d scores; regressions: %s",
        alerts.rolling_days,
        average,
        count,
        [r.metric for r in report.regressions],
    )
    return {
        "report": report.to_json(),
        "rolling_average": average,
        "rolling_count": count,
        "pulls": [p.to_json() for p in pulls if p.pull < 0][:3],
        "report_url": _write_report(job, frame, report),
    }


def _write_report(job: Job, frame: Any, report: Any) -> str:
    """The run's HTML report; a failure to write it is logged, never fails the comparison."""
    from judgeflow.quality.report import write_run_report

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


def alert_on_call(
    settings_path: str, summary: dict[str, Any], comparison: dict[str, Any], context: Any
) -> dict[str, Any]:
    """Post to Slack when quality or judge health needs a person; Slack trouble never fails the run.

    A regression on-call already heard about stays quiet until it worsens or recovers. What on-call
    knows is saved only after Slack took the message, so an outage never swallows an alert."""
    with Job.open(settings_path, context) as job:
        return _alert(job, summary, comparison)


def _alert(job: Job, summary: dict[str, Any], comparison: dict[str, Any]) -> dict[str, Any]:
    from judgeflow.quality.alert_state import plan_alerts
    from judgeflow.quality.alerts import (
        build_alert_blocks,
        decide_alert,
        quality_differences,
        quality_findings,
        send_alert,
    )

    run, alerts, rubric = job.run, job.settings.alerts, job.rubric
    ctx = _alert_context(job, summary, comparison)
    known = job.warehouse.alerts.open_regressions(rubric.name, rubric.version_key)
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
        job.warehouse.alerts.save_open_regressions(
            rubric.name, rubric.version_key, plan.open_after(known, run.interval_end)
        )
    return {"alerted": True, "sent": sent, "reasons": list(decision.reasons), "ongoing": list(plan.ongoing)}


def _alert_context(job: Job, summary: dict[str, Any], comparison: dict[str, Any]) -> Any:
    from judgeflow.quality.alerts import AlertContext, airflow_run_url
    from judgeflow.quality.regression import RegressionReport

    run, alerts = job.run, job.settings.alerts
    return AlertContext(
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
        where=_segment_examples(job, comparison.get("pulls", [])),
    )


def _segment_examples(job: Job, pulls: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The segments pulling the average down, each with its worst response and the judge's reason."""
    from judgeflow.quality.alerts import SegmentExample

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
