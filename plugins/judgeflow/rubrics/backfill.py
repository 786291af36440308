"""A backfill's price, before it runs: what each of its runs will stage, and what judging it costs.

The backfill itself is Airflow's (``airflow backfill create ... --run-conf '{"rescore": true}'``);
``judgeflow estimate --from-date D1 --to-date D2`` (:mod:`judgeflow.rubrics.commands`) prints this
day by day, refused with exit code 2 over ``budget.max_backfill_cost_usd``. It takes the same dates
as ``airflow backfill create``: the run for logical date D judges the day before D, as the daily
run does. After it ran, ``judgeflow compare-versions`` (:mod:`judgeflow.rubrics.versions`) says what
the rubric change did.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from judgeflow.config import Settings
from judgeflow.rubric import Rubric
from judgeflow.rubrics.estimate import CostEstimate, price_staged
from judgeflow.storage.sampling import SampleRule
from judgeflow.storage.warehouse import Warehouse


@dataclass(frozen=True, slots=True)
class DayEstimate:
    judged_day: dt.date
    estimate: CostEstimate


def estimate_backfill(
    warehouse: Warehouse,
    settings: Settings,
    rubric: Rubric,
    *,
    from_date: dt.date,
    to_date: dt.date,
    mode: str,
    rescore: bool = True,
    sample: SampleRule | None = None,
) -> list[DayEstimate]:
    """Stage each run of the backfill the way its ``extract_responses`` will, price it, drop it again.

    The runs go one after another, so only the first one picks up the older backlog (without
    ``rescore``): by the time the next one stages, the earlier runs have judged it."""
    warehouse.ensure_schema()
    tag = uuid.uuid4().hex[:12]
    days = []
    logical = from_date
    while logical <= to_date:
        end = dt.datetime.combine(logical, dt.time(), dt.UTC)
        start = end - dt.timedelta(days=1)
        run_key = f"estimate/{tag}/{logical:%Y-%m-%d}"
        try:
            warehouse.stage_run(
                run_key=run_key,
                rubrics=[rubric],
                batching=settings.batching,
                start=start,
                end=end,
                rescore=rescore,
                backlog=logical == from_date,
                sample=sample,
            )
            estimate = price_staged(warehouse, run_key, rubric, settings, mode=mode)
        finally:
            warehouse.discard_run_items(run_key)
        days.append(DayEstimate(start.date(), estimate))
        logical += dt.timedelta(days=1)
    return days


def backfill_total(days: list[DayEstimate]) -> CostEstimate:
    mode = days[0].estimate.mode if days else "realtime"
    fields = ("responses", "requests", "input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens")
    sums = {f: sum(getattr(d.estimate, f) for d in days) for f in fields}
    rate = days[0].estimate.sample_rate if days else 1.0
    return CostEstimate(mode=mode, cost_usd=round(sum(d.estimate.cost_usd for d in days), 4), sample_rate=rate, **sums)
