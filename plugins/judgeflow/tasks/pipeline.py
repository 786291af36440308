"""One function per DAG task; the only module that knows the order of the steps.

Each function takes the suite's file (the DAG factory gives it), opens its
:class:`~judgeflow.tasks.job.Job` once (suite, rubrics, warehouse), calls down into the concern
folders, and closes the job when the task ends. XCom carries batch descriptors and counts, never texts.

    calibrate_rubric -> extract_responses -> score_batch (mapped: rubric x batch) -> summarize_run
        -> compare_scores -> alert_on_call

A run stages its responses once (sampled, when the suite samples); every rubric of the suite judges
them in its own score tasks, and the summary, comparison and alert are kept apart per rubric.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from typing import Any

from judgeflow.errors import WarehouseError
from judgeflow.records import BatchRef
from judgeflow.rubric import Rubric
from judgeflow.rubrics.estimate import price_staged
from judgeflow.tasks.job import Job, RunContext

log = logging.getLogger(__name__)


def calibrate_rubric(suite: str, context: Any) -> dict[str, Any]:
    """Check the judge against each rubric's human golden set before anything is scored under it.

    Calibrates when due (see :mod:`judgeflow.rubrics.gate`); a version below the floor, or one
    whose canaries steered the judge, fails the task without retries once every rubric was
    checked, so nothing of the run is scored. A drifting judge alerts on-call and does not fail the run."""
    from airflow.sdk.exceptions import AirflowFailException

    run = RunContext.from_airflow(context)
    if run.params.dry_run:
        log.info("dry run: the rubrics are not calibrated now (a real run does, when due)")
        return {"action": "dry_run", "drift": []}
    with Job.open(suite, context) as job:
        job.warehouse.ensure_schema()  # the migrations' revision (and the source's id type) before any judging
        outcomes = {rubric.name: _calibrate(job, rubric) for rubric in job.rubrics}
    refusals = [f"{name} {refusal}" for name, (_, refusal) in outcomes.items() if refusal]
    if refusals:
        raise AirflowFailException("rubric versions that may not score: " + "; ".join(refusals))
    return {name: result for name, (result, _) in outcomes.items()}


def _calibrate(job: Job, rubric: Rubric) -> tuple[dict[str, Any], str | None]:
    from airflow.sdk.exceptions import AirflowFailException

    from judgeflow.judging.client import judge_endpoint
    from judgeflow.quality.alerts import send_alert
    from judgeflow.rubrics.gate import GateAction, JudgeStopped, drift_message, gate
    from judgeflow.storage.calibrations import CalibrationStore

    settings = job.settings
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
    refusal = f"{rubric.version_key}: {outcome.refusal}" if outcome.refusal else None
    if refusal:
        log.error("rubric %s %s may not score: %s", rubric.name, rubric.version_key, outcome.refusal)
    return {"action": str(outcome.action), "drift": [d.criterion for d in outcome.drift]}, refusal


def extract_responses(suite: str, context: Any) -> list[dict[str, Any]]:
    """Stage the run's responses once and return one descriptor per rubric and batch."""
    with Job.open(suite, context) as job:
        return _extract(job)


def _extract(job: Job) -> list[dict[str, Any]]:
    from judgeflow.judging.prompt_cache import prefix_report

    run, warehouse, sample = job.run, job.warehouse, job.sample
    warehouse.ensure_schema()
    count = warehouse.stage_run(
        run_key=run.run_key,
        rubrics=job.rubrics,
        start=run.interval_start,
        end=run.interval_end,
        rescore=run.params.rescore,
        limit=run.params.limit,
        batching=job.settings.batching,
        sample=sample,
    )
    batches = warehouse.plan_batches(run.run_key)
    for rubric in job.rubrics:
        factor = job.settings.price_for(rubric.model).tokenizer_factor
        log.info("rubric %s: %s", rubric.name, prefix_report(rubric, tokenizer_factor=factor).describe())
    log.info(
        "suite %s, rubrics %s, interval %s..%s: %d responses to judge (%s) in %d batches per rubric",
        job.suite.name,
        ", ".join(f"{r.name} {r.version_key}" for r in job.rubrics),
        run.interval_start,
        run.interval_end,
        count,
        sample.describe() if sample.active else "every response",
        len(batches),
    )
    cost = 0.0
    for rubric in job.rubrics:
        estimate = price_staged(warehouse, run.run_key, rubric, job.settings, mode=job.mode)
        log.info("estimated cost under %s: %s", rubric.name, estimate.describe())
        cost += estimate.cost_usd
    if run.params.dry_run:
        warehouse.discard_run_items(run.run_key)
        log.info("dry run: nothing judged, nothing spent")
        return []
    _refuse_over_backfill_cap(job, cost)
    return [batch.for_rubric(r.name, job.result_key(r)).to_xcom() for r in job.rubrics for batch in batches]


def _refuse_over_backfill_cap(job: Job, cost_usd: float) -> None:
    """A rescore (backfill) run estimated over ``budget.max_backfill_cost_usd`` fails before spending."""
    from airflow.sdk.exceptions import AirflowFailException

    cap = job.settings.budget.max_backfill_cost_usd
    if not job.run.params.rescore or cap is None or cost_usd <= cap:
        return
    job.warehouse.discard_run_items(job.run.run_key)
    raise AirflowFailException(
        f"refused: rescoring this run is estimated at ${cost_usd:,.2f} over its rubrics, over "
        f"budget.max_backfill_cost_usd ${cap:,.2f} (the estimate per rubric is in this log); nothing was "
        "judged. Raise the cap, narrow the dates, use mode=batch, or set limit."
    )


def score_batch(suite: str, batch: dict[str, Any], context: Any) -> dict[str, Any]:
    """Judge one batch in realtime in a task of its own (benchmarks and tests call this directly)."""
    with Job.open(suite, context, rubric=batch.get("rubric") or None) as job:
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
        noise_sink=job.judge_quality if job.settings.noise.rate > 0 else None,
    )
    totals = asyncio.run(session)
    log.info("%s done: %s", ref.label, totals.to_json())
    if totals.stopped:
        raise AirflowFailException(f"judge API refused the run, not retrying: {totals.stopped}")
    return {"rubric": rubric.name, **totals.to_json()}


def read_batch(job: Job, ref: BatchRef, *, skip_errored: bool = False) -> Any:
    """The batch's responses not yet scored under the task's rubric by this run (or, unless
    rescoring, by any run) and staged for this rubric; with ``skip_errored``, also not yet given
    up on by this run."""
    rescore = job.run.params.rescore
    return job.warehouse.read_batch(
        ref,
        rubric_name=job.rubric.name,
        rubric_version=job.rubric.version_key,
        dag_run_id=job.run.run_id,
        rescore=rescore,
        skip_errored=skip_errored,
        since=None if rescore else job.run.interval_start,
    )


def summarize_run(suite: str, batch_results: list[dict[str, Any]], context: Any) -> dict[str, Any]:
    """Totals per rubric from the warehouse itself (not from what tasks said), stored in
    ``judge_runs``; the suite's scores Asset gets an event saying what was written."""
    if RunContext.from_airflow(context).params.dry_run:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("dry run: the estimate is in extract_responses' log; nothing to summarize")
    with Job.open(suite, context) as job:
        population = _population(job)
        summaries = {r.name: _summarize(job, r, batch_results, population) for r in job.rubrics}
        _announce_scores(job, summaries, context)
    return {"suite": job.suite.name, "rubrics": summaries}


def _population(job: Job) -> int | None:
    """How many responses the interval holds, when the suite samples (the n of N in the details)."""
    if not job.sample.active:
        return None
    return job.warehouse.count_created(job.run.interval_start, job.run.interval_end)


def _summarize(job: Job, rubric: Rubric, batch_results: list[dict[str, Any]], population: int | None) -> dict[str, Any]:
    run = job.run
    since = None if run.params.rescore else run.interval_start
    totals = job.warehouse.run_totals(run.run_key, run.run_id, rubric.name, rubric.version_key, since=since)
    totals["invalid_null_id"] = job.warehouse.null_ids(run.interval_start, run.interval_end)
    mine = [r for r in batch_results or [] if r.get("rubric", rubric.name) == rubric.name]
    counters = ("requests", "retries", "rate_limited", "budget_refused")
    calls = {k: sum(int(r.get(k) or 0) for r in mine) for k in counters}
    hit_ratio = totals["from_cache"] / totals["scored"] if totals["scored"] else 0.0
    sampling = {"rate": job.settings.sampling.rate, "by": job.settings.sampling.by, "population": population}
    noise = _noise_of_run(job, rubric)
    if noise is not None:
        totals["cost_usd"] = float(totals["cost_usd"] or 0) + noise["cost_usd"]  # the second asks are paid for too
    summary = {
        **totals,
        **calls,
        "noise": noise,
        "cache_hit_ratio": round(hit_ratio, 4),
        "batches": len(mine),
        "sampling": sampling,
        "result_key": job.result_key(rubric),
    }
    job.warehouse.record_run(
        {
            "run_key": job.result_key(rubric),
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
            "suite": job.suite.name,
            "sample_rate": job.settings.sampling.rate,
        }
    )
    log.info("run summary, rubric %s: %s", rubric.name, summary)
    _refresh_daily_scores(job, rubric)
    if totals["left_for_budget"]:
        log.warning("%s: budget cap reached, %d left for the next run", rubric.name, totals["left_for_budget"])
    if totals["unaccounted"]:
        log.error("%s: %d staged responses have neither a score nor an error row", rubric.name, totals["unaccounted"])
    if totals["invalid_null_id"]:
        cfg = job.settings.source
        log.error(
            "%d responses of the interval in %s have a NULL %s: invalid input, not judged (judge_runs.details)",
            totals["invalid_null_id"],
            cfg.table,
            cfg.id_column,
        )
    return summary


def _noise_of_run(job: Job, rubric: Rubric) -> dict[str, Any] | None:
    """The run's noise sample: its figures, recorded in ``judge_noise_daily`` for the interval's day,
    and what its second asks cost; ``None`` when the run asked nothing twice."""
    from judgeflow.quality.judge_quality import noise_summary

    store, run = job.judge_quality, job.run
    asks = store.run_noise(dag_run_id=run.run_id, rubric_name=rubric.name, rubric_version=rubric.version_key)
    if not asks:
        return None
    summary = noise_summary(
        [(a, b) for a, b, _ in asks],
        scale_min=rubric.scale.min,
        scale_max=rubric.scale.max,
        unstable_spread=job.settings.noise.unstable_spread,
    )
    figures = summary.to_json()
    store.record_noise_day(
        rubric_name=rubric.name, rubric_version=rubric.version_key, day=run.interval_start.date(), figures=figures
    )
    failed = sum(1 for _, b, _ in asks if not b)
    log.info("noise sample, rubric %s: %s (%d second asks failed)", rubric.name, figures, failed)
    return {**figures, "asked": len(asks), "failed": failed, "cost_usd": round(sum(c for _, _, c in asks), 6)}


def _announce_scores(job: Job, summaries: dict[str, dict[str, Any]], context: Any) -> None:
    """Set the extra of the suite's scores Asset event (Airflow records it when the task succeeds):
    per rubric, its version, the rows written, n and their mean, and the sample rate."""
    from judgeflow.tasks.suites import scores_asset

    events = context.get("outlet_events") if hasattr(context, "get") else None
    if events is None:
        return
    run = job.run
    rubrics = [
        {
            "rubric": name,
            "rubric_version": rubric.version_key,
            "rows_written": int(summaries[name]["scored"]),
            "errors": int(summaries[name]["errors"]),
            "mean": summaries[name]["mean"],
        }
        for name, rubric in ((r.name, r) for r in job.rubrics)
    ]
    events[scores_asset(job.suite)].extra = {
        "suite": job.suite.name,
        "dag_run_id": run.run_id,
        "interval_start": run.interval_start.isoformat(),
        "interval_end": run.interval_end.isoformat(),
        "sample_rate": job.settings.sampling.rate,
        "rows_written": sum(r["rows_written"] for r in rubrics),
        "rubrics": rubrics,
    }


def _refresh_daily_scores(job: Job, rubric: Rubric) -> None:
    """The UI view's daily aggregates for the days this run touched. A database failure is logged and
    does not fail the run (those days stay stale until a rerun or ``judgeflow rollup``); a bug fails the task."""
    from judgeflow.storage.daily_scores import refresh_for_run

    try:
        refresh_for_run(
            job.warehouse, run_key=job.run.run_key, rubric_name=rubric.name, rubric_version=rubric.version_key
        )
    except WarehouseError:
        log.exception("could not refresh judge_daily_scores for run %s, rubric %s", job.run.run_key, rubric.name)


def compare_scores(suite: str, context: Any) -> dict[str, Any]:
    """Per rubric, this interval against the baseline days before it, overall and per criterion."""
    with Job.open(suite, context) as job:
        return {rubric.name: _compare(job, rubric) for rubric in job.rubrics}


def _compare(job: Job, rubric: Rubric) -> dict[str, Any]:
    """The day against a clean baseline: the days of open (or since recovered) regressions are left out,
    and an accepted level shift starts it afresh (:mod:`judgeflow.tasks.alerting`)."""
    from judgeflow.quality.alerts import ROLLING_AVERAGE_KEY
    from judgeflow.quality.reference import baseline_reach
    from judgeflow.quality.regression import rolling_average, root_causes
    from judgeflow.tasks.alerting import compare_day

    alerts, run, rate = job.settings.alerts, job.run, job.settings.sampling.rate
    store = job.warehouse.alerts
    excluded, floor = store.baseline_exclusions(rubric.name, rubric.version_key, ignore=[ROLLING_AVERAGE_KEY])
    watched = store.open_regressions(rubric.name, rubric.version_key)
    reach, _ = baseline_reach(run.interval_start, baseline_days=alerts.baseline_days, excluded=excluded, floor=floor)
    frame = job.warehouse.scores_frame(
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        criteria=rubric.criterion_names,
        start=run.interval_start - dt.timedelta(days=max(reach + alerts.max_pool_days - 1, alerts.rolling_days)),
        end=run.interval_end,
    )
    if job.settings.noise.exclude_unstable:
        unstable = job.judge_quality.unstable_ids(rubric_name=rubric.name, rubric_version=rubric.version_key)
        log.info("leaving %d unstable verdicts out of the statistics (noise.exclude_unstable)", len(unstable))
        frame = frame[~frame["response_id"].isin(unstable)]
    segments = job.warehouse.segment_names()
    day = compare_day(
        frame,
        alerts=alerts,
        criteria=rubric.criterion_names,
        segments=segments,
        current_start=run.interval_start,
        current_end=run.interval_end,
        excluded=excluded,
        floor=floor,
        unreferenced=[key for key, row in watched.items() if row.reference is None],
    )
    report = day.report
    pulls = root_causes(frame, current_start=run.interval_start, current_end=run.interval_end, segment_columns=segments)
    average, count = rolling_average(frame, end=run.interval_end, days=alerts.rolling_days)
    rows = report.to_json()["comparisons"]
    cause = None if report.root_cause is None else report.root_cause.to_json()
    job.warehouse.alerts.record_comparisons(
        run_key=job.result_key(rubric),
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        # the root cause rides on the all-responses overall row, where the view finds it
        rows=[
            {**row, "sample_rate": rate, **({"root_cause": cause} if _is_everyone_overall(row) else {})} for row in rows
        ],
    )
    log.info(
        "rubric %s: rolling %d-day average %s over n=%d scores (sample rate %.0f%%); baseline of %d days back, "
        "left out %d days of regressions%s; regressions: %s; root cause: %s",
        rubric.name,
        alerts.rolling_days,
        average,
        count,
        rate * 100,
        day.baseline.baseline_days,
        len(day.baseline.left_out),
        f", none before the accepted shift of {floor:%Y-%m-%d}" if floor else "",
        [r.label for r in report.regressions],
        "n/a" if report.root_cause is None else report.root_cause.text,
    )
    return {
        "report": report.to_json(),
        "rolling_average": average,
        "rolling_count": count,
        "sample_rate": rate,
        "pulls": [p.to_json() for p in pulls if p.pull < 0][:3],
        "report_url": _write_report(job, rubric, frame, report, pulls),
        **day.to_json(),
    }


def _is_everyone_overall(row: dict[str, Any]) -> bool:
    return row["metric"] == "overall" and not row.get("segment")


def _write_report(job: Job, rubric: Rubric, frame: Any, report: Any, pulls: Any) -> str:
    """The run's HTML report for one rubric; a failure to write it is logged, never fails the comparison."""
    from judgeflow.quality.alerts import airflow_run_url
    from judgeflow.quality.report import write_run_report
    from judgeflow.ui.links import view_links

    alerts, run, rate = job.settings.alerts, job.run, job.settings.sampling.rate
    overall = [c for c in report.to_json()["comparisons"] if _is_everyone_overall(c)]
    n = int(overall[0]["current_n"]) if overall else 0
    sampled = f", a {rate:.0%} sample" if rate < 1 else ""
    try:
        url = write_run_report(
            length_bias=_length_bias(job, rubric),
            scores=frame,
            report=report,
            criteria=rubric.criterion_names,
            folder=alerts.report_folder,
            run_key=job.result_key(rubric),
            title=(
                f"judgeflow: {job.suite.name}, {rubric.name} {rubric.version_key}, "
                f"{run.interval_start:%Y-%m-%d} (n={n}{sampled})"
            ),
            pulls=pulls,
            links=[
                ("this run in Airflow", airflow_run_url(alerts.airflow_base_url, dag_id=run.dag_id, run_id=run.run_id)),
                *view_links(
                    alerts.airflow_base_url,
                    rubric=rubric.name,
                    version=rubric.version_key,
                    segment=_where_to_look(report, pulls),
                ),
            ],
        )
    except Exception:
        log.exception("could not write the run report to %s", alerts.report_folder)
        return ""
    if alerts.report_base_url:
        url = alerts.report_base_url.rstrip("/") + "/" + url.rstrip("/").split("/")[-2] + "/index.html"
    log.info("report for %s: %s", rubric.name, url)
    return url


def _where_to_look(report: Any, pulls: Any) -> str | None:
    """The segment a report's link opens: the first segment that regressed, else the one pulling the mean down most."""
    regressed = next((c.segment for c in report.regressions if c.segment), None)
    return regressed or next((p.segment for p in pulls if p.pull < 0), None)


def _length_bias(job: Job, rubric: Rubric) -> Any:
    """Length against score for the run's interval, controlled to the median length of the baseline
    and the interval together, so days compare at one reference length."""
    from judgeflow.quality.judge_quality import length_bias

    run, alerts = job.run, job.settings.alerts
    lengths, _ = job.judge_quality.lengths_and_scores(
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        start=run.interval_start - dt.timedelta(days=alerts.baseline_days),
        end=run.interval_end,
    )
    current_lengths, current_scores = job.judge_quality.lengths_and_scores(
        rubric_name=rubric.name, rubric_version=rubric.version_key, start=run.interval_start, end=run.interval_end
    )
    reference = float(sorted(lengths)[len(lengths) // 2]) if lengths else None
    return length_bias(current_lengths, current_scores, reference_chars=reference)


def alert_on_call(suite: str, summary: dict[str, Any], comparison: dict[str, Any], context: Any) -> dict[str, Any]:
    """Post to the suite's Slack channel when quality or judge health needs a person, one message
    per rubric; Slack trouble never fails the run.

    Only the newest interval judged so far pages and moves what on-call knows; a past interval's run
    logs what it would have said, and a backfill's last run sends one digest
    (:mod:`judgeflow.tasks.alerting`). What on-call knows is saved only after Slack took the message,
    so an outage never swallows an alert."""
    with Job.open(suite, context) as job:
        return {r.name: _alert(job, r, summary["rubrics"][r.name], comparison[r.name]) for r in job.rubrics}


def _alert(job: Job, rubric: Rubric, summary: dict[str, Any], comparison: dict[str, Any]) -> dict[str, Any]:
    from judgeflow.quality.alerts import build_alert_blocks, decide_alert, send_alert
    from judgeflow.tasks.alerting import day_findings, plan_day, remember, rules_of, run_role

    run, store = job.run, job.warehouse.alerts
    role = run_role(
        run_type=run.run_type,
        params=run.params,
        interval_start=run.interval_start,
        interval_end=run.interval_end,
        newest_end=store.newest_interval_end(run.dag_id, rubric.name, rubric.version_key),
    )
    log.info("%s, interval %s..%s: %s", rubric.name, run.interval_start, run.interval_end, role.describe())
    ctx = _alert_context(job, rubric, summary, comparison)
    if not role.latest:
        return _historical(job, rubric, ctx, role)
    findings = day_findings(
        comparison,
        threshold=job.settings.alerts.min_rolling_average,
        rolling_days=job.settings.alerts.rolling_days,
        interval_start=run.interval_start,
        interval_end=run.interval_end,
    )
    day = plan_day(
        store,
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        findings=findings,
        rules=rules_of(job.settings.alerts),
        interval_end=run.interval_end,
    )
    plan = day.plan
    if day.counted_already:
        log.info("%s: this interval already moved the alert state; nothing is sent again", rubric.name)
        return {"alerted": False, "sent": False, "reasons": [], "ongoing": list(plan.ongoing), "role": "rerun"}
    ctx = dataclasses.replace(ctx, plan=plan)
    decision = decide_alert(ctx)

    def keep() -> None:
        remember(
            store, rubric_name=rubric.name, rubric_version=rubric.version_key, plan=plan, interval_end=run.interval_end
        )

    if not decision.should_alert:
        keep()
        log.info(
            "%s: no alert, nothing new for on-call (open: %s; pending: %s)",
            rubric.name,
            list(plan.ongoing) or "none",
            list(plan.pending) or "none",
        )
        return {"alerted": False, "sent": False, "reasons": [], "ongoing": list(plan.ongoing)}
    text, blocks = build_alert_blocks(ctx, decision)
    sent = send_alert(conn_id=job.settings.connections.slack, text=text, blocks=blocks)
    if sent:
        keep()
    return {"alerted": True, "sent": sent, "reasons": list(decision.reasons), "ongoing": list(plan.ongoing)}


def _historical(job: Job, rubric: Rubric, ctx: Any, role: Any) -> dict[str, Any]:
    """A past interval: never pages and leaves the state alone; logs what it found, marked historical.
    A backfill's last run sends the backfill's one digest."""
    from judgeflow.quality.alerts import build_alert_blocks, decide_alert, send_alert

    ctx = dataclasses.replace(ctx, historical=True, newest_end=role.newest_end)
    decision = decide_alert(ctx)
    if decision.should_alert:
        text, _ = build_alert_blocks(ctx, decision)
        log.info("%s: not paged (historical): %s", rubric.name, text)
    sent = False
    if role.digest:
        text, blocks = _digest(job, rubric)
        log.info("%s: backfill digest: %s", rubric.name, text)
        sent = send_alert(conn_id=job.settings.connections.slack, text=text, blocks=blocks)
    return {"alerted": False, "sent": sent, "reasons": list(decision.reasons), "historical": True, "digest": sent}


def _digest(job: Job, rubric: Rubric) -> tuple[str, list[dict[str, Any]]]:
    from urllib.parse import quote

    from judgeflow.quality.alert_text import Digest, digest_message
    from judgeflow.tasks.alerting import DAY, backfill_days

    run = job.run
    start, end = backfill_days(run.params, run.interval_start)
    days = job.warehouse.alerts.judged_days(run.dag_id, rubric.name, rubric.version_key, start=start, end=end)
    judged = {d.interval_start for d in days}
    wanted = [start + i * DAY for i in range((end - start).days)]
    regressions: dict[str, list[dt.datetime]] = {}
    for d in days:
        for key in d.regressions:
            regressions.setdefault(key, []).append(d.interval_start)
    base = job.settings.alerts.airflow_base_url.rstrip("/")
    return digest_message(
        Digest(
            dag_id=run.dag_id,
            rubric=f"{rubric.name} (v{rubric.version_key})",
            days=sorted(judged),
            missing=[d for d in wanted if d not in judged],
            regressions=regressions,
            link=f"{base}/dags/{quote(run.dag_id, safe='')}/runs",
            first=start,
            last=end - DAY,
        )
    )


def _alert_context(job: Job, rubric: Rubric, summary: dict[str, Any], comparison: dict[str, Any]) -> Any:
    from judgeflow.quality.alerts import AlertContext, airflow_run_url
    from judgeflow.quality.regression import RegressionReport

    run, alerts = job.run, job.settings.alerts
    return AlertContext(
        dag_id=run.dag_id,
        run_id=run.run_id,
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
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
        where=_segment_examples(job, rubric, comparison.get("pulls", [])),
        sample_rate=float(comparison.get("sample_rate", 1.0)),
    )


def _segment_examples(job: Job, rubric: Rubric, pulls: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The segments pulling the average down, each with its worst response and the judge's reason."""
    from judgeflow.quality.alerts import SegmentExample

    worst = [(p, p["worst"][0]) for p in pulls if p.get("worst")]
    reasons = job.warehouse.rationales(
        [w["response_id"] for _, w in worst], rubric_name=rubric.name, rubric_version=rubric.version_key
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
