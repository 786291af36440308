"""Backfills after a rubric change: price them before, compare the versions after.

The backfill itself is Airflow's (``airflow backfill create ... --run-conf '{"rescore": true}'``);
these are the two commands around it:

- ``judgeflow estimate --from-date D1 --to-date D2``: what the backfill's runs will stage, day by
  day, and what judging it will cost (tokens, dollars; batch and cache aware), refused with exit
  code 2 over ``budget.max_backfill_cost_usd``. It takes the same dates as ``airflow backfill
  create``: the run for logical date D judges the day before D, as the daily run does.
- ``judgeflow compare-versions``: old version against new on the responses both scored.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from judgeflow.config import Settings, load_settings
from judgeflow.connections import warehouse_url
from judgeflow.cost_estimate import CostEstimate, price_staged
from judgeflow.pipeline import stage_run
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.version_compare import compare_versions, known_versions
from judgeflow.warehouse import Warehouse

DEFAULT_SETTINGS = Path(__file__).resolve().parents[2] / "include" / "judgeflow.yaml"


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
            stage_run(
                warehouse,
                settings,
                rubric,
                run_key=run_key,
                start=start,
                end=end,
                rescore=rescore,
                limit=None,
                backlog=logical == from_date,
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
    return CostEstimate(mode=mode, cost_usd=round(sum(d.estimate.cost_usd for d in days), 4), **sums)


def _open(args: argparse.Namespace) -> tuple[Settings, Rubric, Warehouse]:
    settings = load_settings(args.settings)
    rubric = load_rubric(settings.rubric_dir, args.rubric or settings.rubric)
    url = args.url or warehouse_url(settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path)
    return settings, rubric, Warehouse.from_url(url, settings.source)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--settings", default=str(DEFAULT_SETTINGS), help="settings file")
    parser.add_argument("--rubric", help="rubric name (default: the settings' active rubric)")
    parser.add_argument("--url", help="warehouse SQLAlchemy URL (default: the judge_warehouse connection)")


def estimate_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow estimate", description=__doc__.splitlines()[0])
    _common(parser)
    parser.add_argument("--from-date", type=dt.date.fromisoformat, required=True, help="first logical date")
    parser.add_argument("--to-date", type=dt.date.fromisoformat, required=True, help="last logical date")
    parser.add_argument("--mode", choices=("realtime", "batch"), help="default: the settings' mode")
    parser.add_argument("--only-unscored", action="store_true", help="estimate runs without rescore")
    args = parser.parse_args(argv)
    settings, rubric, warehouse = _open(args)
    mode = args.mode or settings.mode
    days = estimate_backfill(
        warehouse,
        settings,
        rubric,
        from_date=args.from_date,
        to_date=args.to_date,
        mode=mode,
        rescore=not args.only_unscored,
    )
    print(f"backfill of {rubric.name} {rubric.version_key}, {mode} mode, prices for {rubric.model}:")
    print(f"{'judged day':<12}{'responses':>10}{'requests':>10}{'input tok':>12}{'output tok':>12}{'$':>10}")
    for day in days:
        e = day.estimate
        inputs = e.input_tokens + e.cache_write_tokens + e.cache_read_tokens
        print(
            f"{day.judged_day!s:<12}{e.responses:>10,}{e.requests:>10,}{inputs:>12,}{e.output_tokens:>12,}{e.cost_usd:>10.4f}"
        )
    whole = backfill_total(days)
    print(f"total: {whole.describe()}")
    cap = settings.budget.max_backfill_cost_usd
    if cap is not None and whole.cost_usd > cap:
        print(f"refused: ${whole.cost_usd:,.2f} is over budget.max_backfill_cost_usd ${cap:,.2f}", file=sys.stderr)
        return 2
    return 0


def compare_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow compare-versions", description="old rubric version vs new")
    _common(parser)
    parser.add_argument("--old", help="old version key (default: the one before the newest)")
    parser.add_argument("--new", help="new version key (default: the newest with scores)")
    parser.add_argument("--movers", type=int, default=5, help="responses that moved most to list")
    args = parser.parse_args(argv)
    _settings, rubric, warehouse = _open(args)
    versions = known_versions(warehouse, rubric.name)
    new = args.new or (versions[-1] if versions else None)
    older = versions[: versions.index(new)] if new in versions else []
    old = args.old or (older[-1] if older else None)  # the version just before ``new``
    if old is None or new is None:
        print(f"rubric {rubric.name}: need scores under two versions, found {versions}", file=sys.stderr)
        return 2
    print(compare_versions(warehouse, rubric.name, old, new, movers=args.movers).table())
    return 0
