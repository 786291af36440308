"""A PostgreSQL warehouse of generated scores at any size, for ``judgeflow-dev bench-ui`` and the view's tests.

Rows are made inside the database (``generate_series`` and ``INSERT ... SELECT``), so a million
scores take seconds, not the minutes row-by-row inserts would. The scores are a deterministic
function of the response id, with two planted regressions:

- ``accuracy`` in ``topic=shipping`` drops on the second-to-last day and further on the last day,
  so on-call has it ``open`` and then ``worsening``;
- ``tone`` in ``topic=billing`` drops on one day five days before the end and is back the next,
  so it shows as ``recovered``.

A verdict at the bottom of the scale quotes an API key and an e-mail address in its rationale, so the
view's redaction has something to mask. What judgeflow itself computes is then computed by judgeflow's
own code: ``judge_daily_scores`` by
:func:`judgeflow.storage.daily_scores.refresh_daily_scores`, and for the last days the comparisons
and the alert state (:func:`judgeflow.tasks.alerting.replay_day`, the alert tasks' decision code, as
if Slack took every message).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import Engine, MetaData, TextClause, text

from judgeflow.config import AlertConfig, SourceConfig
from judgeflow.storage.daily_scores import refresh_daily_scores
from judgeflow.storage.warehouse import Warehouse
from judgeflow.tasks.alerting import replay_day
from judgeflow_devkit.sample_data import source_table

log = logging.getLogger(__name__)

DAY = dt.timedelta(days=1)
RUBRIC = "helpfulness"
VERSION = "1+generated"
CRITERIA = {"accuracy": 0.5, "tone": 0.2, "completeness": 0.3}
TOPICS = ("billing", "shipping", "returns", "account", "product")
COMPARED_DAYS = 6


@dataclass(frozen=True, slots=True)
class GeneratedWarehouse:
    warehouse: Warehouse
    rows: int
    first_day: dt.date
    last_day: dt.date


def generate(engine: Engine, *, rows: int, days: int, last_day: dt.date, n_boot: int = 200) -> GeneratedWarehouse:
    """Fill an empty PostgreSQL schema (the engine's ``search_path``) with ``rows`` scored responses."""
    if engine.dialect.name != "postgresql":
        raise ValueError("the generator writes with PostgreSQL's generate_series")
    metadata = MetaData()
    metadata.create_all(engine, tables=[source_table(metadata)])
    warehouse = Warehouse(engine, SourceConfig())
    warehouse.upgrade_schema()  # what `judgeflow db upgrade` does
    end = dt.datetime.combine(last_day + DAY, dt.time(), tzinfo=dt.UTC)
    start = end - days * DAY
    with engine.begin() as conn:
        for statement in _insert_statements():
            conn.execute(statement, {"rows": rows, "start": start, "end": end, "days": days})
        conn.execute(text("ANALYZE"))
    refresh_daily_scores(warehouse, rubric_name=RUBRIC, rubric_version=VERSION, start=start.date(), end=end.date())
    _compare_last_days(warehouse, last_day=last_day, n_boot=n_boot)
    return GeneratedWarehouse(warehouse, rows, start.date(), last_day)


def _insert_statements() -> list[TextClause]:
    topics = "ARRAY[" + ", ".join(f"'{t}'" for t in TOPICS) + "]"
    criteria = "ARRAY[" + ", ".join(f"'{c}'" for c in CRITERIA) + "]"
    weights = " + ".join(f"{w} * max(score) FILTER (WHERE criterion = '{c}')" for c, w in CRITERIA.items())
    # the day index counted back from the end: 0 = the last day
    back = "floor(extract(epoch FROM (:end - r.created_at)) / 86400)"
    return [
        text(
            f"""
            INSERT INTO app_responses (id, created_at, question, context, response, topic)
            SELECT g, :start + (:end - :start) * ((g - 0.5) / :rows),
                   'Question ' || g || ' about my order', NULL,
                   CASE WHEN g % 50 = 0
                        THEN 'Write to jane.doe@example.com or call +1 415 555 0100 (ticket ' || g || ')'
                        ELSE 'Answer number ' || g END,
                   ({topics})[1 + (g::bigint * 7919) % {len(TOPICS)}]
            FROM generate_series(1, :rows) AS g
            """
        ),
        text(
            f"""
            INSERT INTO judge_criterion_scores (response_id, rubric_name, rubric_version, criterion, score, rationale)
            SELECT r.id, '{RUBRIC}', '{VERSION}', c.name,
                   greatest(1, base.score - CASE
                       WHEN c.name = 'accuracy' AND r.topic = 'shipping' AND {back} = 0 THEN 3
                       WHEN c.name = 'accuracy' AND r.topic = 'shipping' AND {back} = 1 THEN 1
                       WHEN c.name = 'tone' AND r.topic = 'billing' AND {back} = 4 THEN 2
                       ELSE 0 END),
                   CASE WHEN base.score = 1
                        THEN 'The answer leaks key sk-ant-abcdefghijklmnop, sends them to jane.doe@example.com'
                        ELSE 'The answer addresses the question on ' || c.name || '.' END
            FROM app_responses r
            CROSS JOIN unnest({criteria}) AS c(name)
            CROSS JOIN LATERAL (
                SELECT CASE WHEN h < 5 THEN 1 WHEN h < 15 THEN 2 WHEN h < 40 THEN 3 WHEN h < 75 THEN 4 ELSE 5 END
                FROM (SELECT abs(hashtext(r.id::text || c.name)) % 100 AS h) AS hashed
            ) AS base(score)
            WHERE r.id % 211 <> 0
            """
        ),
        text(
            f"""
            INSERT INTO judge_scores (response_id, rubric_name, rubric_version, overall, rationale, model,
                input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_usd, latency_ms,
                cache_hit, truncated, dag_run_id, scored_at)
            SELECT s.response_id, '{RUBRIC}', '{VERSION}', {weights},
                   string_agg(s.criterion || ': ' || s.rationale, '; ' ORDER BY s.criterion),
                   'claude-haiku-4-5', 900, 180, 0, 5800, 0.00109, 950, s.response_id % 5 = 0, false,
                   'scheduled__' || to_char(min(r.created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                   min(r.created_at) + interval '1 day'
            FROM judge_criterion_scores s JOIN app_responses r ON r.id = s.response_id
            GROUP BY s.response_id
            """
        ),
        text(
            f"""
            INSERT INTO judge_errors (response_id, rubric_name, rubric_version, kind, reason, retryable, attempts,
                raw_reply, dag_run_id, recorded_at)
            SELECT id, '{RUBRIC}', '{VERSION}', 'malformed_verdict', 'no tool_use block', true, 2, NULL,
                   'scheduled__' || to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), created_at + interval '1 day'
            FROM app_responses WHERE id % 211 = 0
            """
        ),
        text(
            f"""
            INSERT INTO judge_runs (run_key, dag_id, dag_run_id, rubric_name, rubric_version, interval_start,
                interval_end, extracted, scored, from_cache, errors, unaccounted, input_tokens, output_tokens,
                cost_usd, details, finished_at)
            SELECT 'llm_judge_daily/' || run_id, 'llm_judge_daily', run_id, '{RUBRIC}', '{VERSION}', day,
                   day + interval '1 day', scored + errors, scored, from_cache, errors, 0, 900 * scored,
                   180 * scored, cost, json_build_object('malformed', errors, 'left_for_budget', 0),
                   day + interval '1 day 1 hour'
            FROM (
                SELECT date_trunc('day', r.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day,
                       'scheduled__' || to_char(r.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS run_id,
                       count(s.response_id) AS scored, count(*) - count(s.response_id) AS errors,
                       count(*) FILTER (WHERE s.cache_hit) AS from_cache, coalesce(sum(s.cost_usd), 0) AS cost
                FROM app_responses r
                LEFT JOIN judge_scores s ON s.response_id = r.id
                GROUP BY 1, 2
            ) AS per_day
            """
        ),
    ]


def _compare_last_days(warehouse: Warehouse, *, last_day: dt.date, n_boot: int) -> None:
    """What ``compare_scores`` and ``alert_on_call`` store, for each of the last days in order."""
    # one bad day pages and one good day recovers, so the last days show open, worsening and recovered
    rules = AlertConfig(open_after_days=1, recover_days=1)
    for back in range(COMPARED_DAYS - 1, -1, -1):
        day = last_day - back * DAY
        current_start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        current_end = current_start + DAY
        frame = warehouse.scores_frame(
            rubric_name=RUBRIC,
            rubric_version=VERSION,
            criteria=list(CRITERIA),
            start=current_start - 2 * rules.baseline_days * DAY,
            end=current_end,
        )
        compared, planned = replay_day(
            warehouse.alerts,
            frame,
            alerts=rules,
            criteria=list(CRITERIA),
            segments=warehouse.segment_names(),
            rubric_name=RUBRIC,
            rubric_version=VERSION,
            current_start=current_start,
            current_end=current_end,
            n_boot=n_boot,
        )
        warehouse.alerts.record_comparisons(
            run_key=f"llm_judge_daily/scheduled__{day:%Y-%m-%d}",
            rubric_name=RUBRIC,
            rubric_version=VERSION,
            rows=compared.report.to_json()["comparisons"],
        )
        plan = planned.plan
        log.info("compared %s: new %s, worsening %s, recovered %s", day, plan.new, plan.worsening, plan.recovered)


__all__ = ["CRITERIA", "RUBRIC", "VERSION", "GeneratedWarehouse", "generate"]
