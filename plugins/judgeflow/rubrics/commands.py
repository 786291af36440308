"""The rubric lifecycle's commands: ``judgeflow estimate``, ``compare-versions``, ``calibrate`` and
``migrate-model``.

They run beside Airflow, not in a task, so connections are resolved as Airflow's own server
processes resolve them (secrets backend, environment, then the metadata database): a connection
added with ``airflow connections add`` counts as much as an ``AIRFLOW_CONN_*`` variable. Nothing
here ever starts a local emulator: ``judgeflow-dev calibrate --emulator`` (the dev kit) does that on
purpose, and the calibration it stores names the emulator's endpoint, which the DAG's gate never
accepts for a real one.

Exit codes: 0 done (or the rubric version passed), 1 the rubric version was refused, 2 a
configuration problem or a backfill (or migration) over its cap.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from judgeflow.config import Settings, default_settings_path
from judgeflow.connections import server_connection, warehouse_target
from judgeflow.errors import JudgeflowError
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.storage.warehouse import Warehouse
from judgeflow.suite import DEFAULTS_FILE, SUITES_DIR, Suite, load_suite


def estimate_main(argv: list[str] | None = None) -> int:
    """What a backfill's runs will stage, day by day, and what judging it will cost."""
    from judgeflow.rubrics.backfill import backfill_total, estimate_backfill

    parser = _parser("judgeflow estimate", "what a backfill will cost, before it runs")
    parser.add_argument("--from-date", type=dt.date.fromisoformat, required=True, help="first logical date")
    parser.add_argument("--to-date", type=dt.date.fromisoformat, required=True, help="last logical date")
    parser.add_argument("--mode", choices=("realtime", "batch"), help="default: the settings' mode")
    parser.add_argument("--only-unscored", action="store_true", help="estimate runs without rescore")
    args = parser.parse_args(argv)

    def run(suite: Suite, rubric: Rubric, warehouse: Warehouse) -> int:
        from judgeflow.storage.sampling import SampleRule

        settings = suite.settings
        mode = args.mode or settings.mode
        sample = SampleRule(settings.sampling, salt=settings.sampling.salt or suite.name)
        days = estimate_backfill(
            warehouse,
            settings,
            rubric,
            from_date=args.from_date,
            to_date=args.to_date,
            mode=mode,
            rescore=not args.only_unscored,
            sample=sample,
        )
        print(f"backfill of {rubric.name} {rubric.version_key}, {mode} mode, prices for {rubric.model}:")
        print(f"{'judged day':<12}{'responses':>10}{'requests':>10}{'input tok':>12}{'output tok':>12}{'$':>10}")
        for day in days:
            e = day.estimate
            inputs = e.input_tokens + e.cache_write_tokens + e.cache_read_tokens
            print(
                f"{day.judged_day!s:<12}{e.responses:>10,}{e.requests:>10,}{inputs:>12,}"
                f"{e.output_tokens:>12,}{e.cost_usd:>10.4f}"
            )
        whole = backfill_total(days)
        print(f"total: {whole.describe()}")
        cap = settings.budget.max_backfill_cost_usd
        if cap is not None and whole.cost_usd > cap:
            print(f"refused: ${whole.cost_usd:,.2f} is over budget.max_backfill_cost_usd ${cap:,.2f}", file=sys.stderr)
            return 2
        return 0

    return _with_warehouse(args, run)


def compare_main(argv: list[str] | None = None) -> int:
    """Old rubric version against new on the responses both scored."""
    from judgeflow.rubrics.versions import compare_versions, known_versions

    parser = _parser("judgeflow compare-versions", "old rubric version vs new")
    parser.add_argument("--old", help="old version key (default: the one before --new)")
    parser.add_argument("--new", help="new version key (default: the newest with scores)")
    parser.add_argument("--movers", type=int, default=5, help="responses that moved most to list")
    args = parser.parse_args(argv)

    def run(suite: Suite, rubric: Rubric, warehouse: Warehouse) -> int:
        versions = known_versions(warehouse, rubric.name)
        new = args.new or (versions[-1] if versions else None)
        older = versions[: versions.index(new)] if new in versions else []
        old = args.old or (older[-1] if older else None)  # the version just before ``new``
        if old is None or new is None:
            print(f"rubric {rubric.name}: need scores under two versions, found {versions}", file=sys.stderr)
            return 2
        print(compare_versions(warehouse, rubric.name, old, new, movers=args.movers).table())
        return 0

    return _with_warehouse(args, run)


def golden_main(argv: list[str] | None = None) -> int:
    """``judgeflow golden export``: append reviewed production responses to the rubric's golden set."""
    from judgeflow.rubrics.golden import GoldenItem, append_reviewed
    from judgeflow.storage.judge_quality import JudgeQualityStore

    parser = _parser("judgeflow golden export", "append reviewed responses to the rubric's golden set")
    parser.add_argument("action", choices=["export"])
    parser.add_argument("--version", help="only labels of this rubric version (default: every version)")
    args = parser.parse_args(argv)

    def run(suite: Suite, rubric: Rubric, warehouse: Warehouse) -> int:
        reviewed = JudgeQualityStore(warehouse).reviewed(rubric_name=rubric.name, rubric_version=args.version)
        items = [
            GoldenItem(
                id=f"prod-{r.response_id}"[:64],
                question=r.question,
                context=r.context,
                response=r.response,
                scores=r.scores,
            )
            for r in reviewed
        ]
        done = append_reviewed(suite.settings.calibration.golden_dir, rubric, items)
        print(
            f"{done.path}: {done.appended} appended, {done.duplicates} already there, "
            f"{done.incomplete} without every criterion; {done.kept} existing items kept"
        )
        return 0

    return _with_warehouse(args, run)


def calibrate_main(argv: list[str] | None = None) -> int:
    """Judge the rubric's golden set now with the configured judge, print the table, store the run.

    Unlike the DAG's ``calibrate_rubric`` task it always judges (that is how to re-check a refused
    version on demand), and its run becomes the latest calibration the gate sees for that endpoint."""
    parser = _parser("judgeflow calibrate", "judge a rubric's golden set now and store the agreement")
    args = parser.parse_args(argv)
    for name in ("httpx", "httpx2"):  # one line per judged item would drown the table
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        settings = _suite(args, need_suite=False).settings  # the golden set is the rubric's, not a suite's
        with airflow_connection(settings.connections.anthropic):
            return _calibrate(settings, args.rubric, args.url)
    except JudgeflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _calibrate(settings: Settings, rubric_name: str | None, url: str | None) -> int:
    from judgeflow.judging.client import judge_endpoint
    from judgeflow.rubrics.calibration import format_table
    from judgeflow.rubrics.gate import calibrate
    from judgeflow.rubrics.golden import golden_path, load_golden_set
    from judgeflow.storage.calibrations import CalibrationStore

    rubric = load_rubric(settings.rubric_dir, rubric_name or settings.rubric_names[0])
    golden = load_golden_set(settings.calibration.golden_dir, rubric)
    if golden is None:
        where = golden_path(settings.calibration.golden_dir, rubric.name)
        print(f"rubric {rubric.name!r} has no golden set at {where}", file=sys.stderr)
        return 2
    endpoint = asyncio.run(judge_endpoint(settings.connections.anthropic))
    store = CalibrationStore.from_url(url or _warehouse_target(settings))
    try:
        store.ensure_schema()
        print(
            f"judging the golden set {golden.path.name} ({len(golden.items)} items) with {rubric.model} at {endpoint}"
        )
        calibration = asyncio.run(
            calibrate(
                golden, settings=settings, rubric=rubric, store=store, endpoint=endpoint, now=dt.datetime.now(dt.UTC)
            )
        )
        print()
        print(format_table(calibration, settings.calibration))
        stored_at = store.engine.url.render_as_string(hide_password=True)
        print(f"\nstored in judge_calibrations and judge_calibration_runs at {stored_at}")
    finally:
        store.close()
    return 0 if calibration.passed else 1


def migrate_main(argv: list[str] | None = None) -> int:
    """Move a rubric to another judge model: price, gate, shadow, compare, recommend (see
    :mod:`judgeflow.rubrics.migrate`)."""
    parser = _parser("judgeflow migrate-model", "move a rubric to another judge model, gated by calibration")
    parser.add_argument("--to", required=True, metavar="MODEL", help="the new judge model, e.g. claude-haiku-5-5")
    parser.add_argument("--days", type=int, default=7, help="the last N whole days both models judge (default 7)")
    parser.add_argument("--dry-run", action="store_true", help="print the estimate only; judge nothing")
    parser.add_argument("--apply", action="store_true", help="write the rubric's model change if the gate passes")
    parser.add_argument("--movers", type=int, default=5, help="responses that moved most to list")
    args = parser.parse_args(argv)
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)

    def run(suite: Suite, rubric: Rubric, warehouse: Warehouse) -> int:
        try:
            with airflow_connection(suite.settings.connections.anthropic):
                return _migrate(args, suite, rubric, warehouse)
        except JudgeflowError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return _with_warehouse(args, run)


def _migrate(args: argparse.Namespace, suite: Suite, rubric: Rubric, warehouse: Warehouse) -> int:
    from judgeflow.judging.client import judge_endpoint
    from judgeflow.rubrics import migrate
    from judgeflow.rubrics.gate import gate
    from judgeflow.rubrics.golden import load_golden_set
    from judgeflow.storage.calibrations import CalibrationStore
    from judgeflow.storage.sampling import SampleRule

    settings = suite.settings
    now = dt.datetime.now(dt.UTC)
    plan = migrate.MigrationPlan.last_days(settings, rubric, to_model=args.to, days=args.days, now=now)
    sample = SampleRule(settings.sampling, salt=settings.sampling.salt or suite.name)
    golden = load_golden_set(settings.calibration.golden_dir, plan.candidate)
    warehouse.ensure_schema()
    print(
        f"migrate rubric {rubric.name} from {plan.current.model} ({plan.current.version_key}) to "
        f"{plan.candidate.model} ({plan.candidate.version_key}), "
        f"days {plan.start:%Y-%m-%d} to {plan.end - dt.timedelta(days=1):%Y-%m-%d}"
    )
    estimate = migrate.estimate_migration(warehouse, settings, plan, golden, sample=sample)
    print(f"(i) dry-run cost, realtime prices (batch: half):\n{estimate.describe()}")
    cap = settings.budget.max_backfill_cost_usd
    if cap is not None and estimate.cost_usd > cap:
        print(f"refused: ${estimate.cost_usd:,.4f} is over budget.max_backfill_cost_usd ${cap:,.2f}", file=sys.stderr)
        return 2
    if args.dry_run:
        print("dry run: nothing judged")
        return 0
    endpoint = asyncio.run(judge_endpoint(settings.connections.anthropic))
    store = CalibrationStore.from_url(warehouse.engine)
    outcome = asyncio.run(gate(settings, plan.candidate, store, endpoint=endpoint, now=now))
    passed = outcome.refusal is None and golden is not None
    print(f"(ii) calibration gate with {plan.candidate.model} at {endpoint}: {'passed' if passed else 'refused'}")
    print(outcome.message)
    if not passed:
        refusal = outcome.refusal or "no golden set: a model change is only made on a calibrated rubric"
        advice = migrate.recommend(plan, gate_passed=False, refusal=refusal, comparison=None, min_drop=0.0)
        print(f"(v) recommendation: {advice}")
        return 1
    print("(iii) shadow run, both models on the same days:")
    for side in (plan.current, plan.candidate):
        totals = migrate.shadow_run(warehouse, settings, plan, side, sample=sample)
        print(
            f"  {side.model} ({side.version_key}): {totals.items:,} judged now ({totals.scored:,} scored, "
            f"{totals.errors:,} errors), ${totals.cost_usd:.4f}"
        )
        if totals.stopped:
            print(f"judge API refused the shadow run: {totals.stopped}", file=sys.stderr)
            return 2
    comparison = migrate.compare_models(warehouse, plan, movers=args.movers)
    print("(iv) comparison:")
    print(comparison.table())
    advice = migrate.recommend(
        plan, gate_passed=True, refusal=None, comparison=comparison, min_drop=settings.alerts.min_drop
    )
    print(f"(v) recommendation: {advice}")
    change = f"model: {plan.candidate.model}"
    if args.apply:
        path = migrate.switch_rubric_model(settings.rubric_dir, plan)
        print(f"applied: {path} now says '{change}'; the next run scores version {plan.candidate.version_key}")
    else:
        print(f"to switch: set '{change}' in the rubric file (or rerun with --apply)")
    return 0


@contextmanager
def airflow_connection(conn_id: str) -> Iterator[None]:
    """Make connection ``conn_id``, found as Airflow's server processes find it, visible to provider
    hooks in this process; a missing one is a :class:`ConfigError` that says how to add it.

    Hooks outside a task look only at the environment and secrets backends, not at the metadata
    database, so the resolved connection is handed to them as ``AIRFLOW_CONN_<ID>`` for the
    duration (the variable is restored afterwards)."""
    import os

    from judgeflow.errors import ConfigError

    conn = server_connection(conn_id)
    if conn is None:
        raise ConfigError(
            f"Airflow connection {conn_id!r} is not defined (looked in the secrets backend, the environment "
            f"and the metadata database); add it with `airflow connections add {conn_id} --conn-type anthropic "
            "--conn-password <API key>`, or calibrate against the local emulator with "
            "`judgeflow-dev calibrate --emulator`"
        )
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    before = os.environ.get(variable)
    os.environ[variable] = conn.as_json()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--settings", type=Path, default=None, help="settings or suite file (default: --suite's)")
    parser.add_argument("--suite", help="a suite of the deployment: include/suites/<SUITE>.yaml")
    parser.add_argument("--rubric", help="rubric name (default: the suite's first rubric)")
    parser.add_argument("--url", help="warehouse SQLAlchemy URL (default: the judge_warehouse connection)")
    return parser


def _warehouse_target(settings: Settings) -> str | Engine:
    return warehouse_target(
        settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path, lookup=server_connection
    )


def _suite(args: argparse.Namespace, *, need_suite: bool = True) -> Suite:
    """The suite a command works on: ``--settings`` (a suite file or a whole settings file), else
    ``--suite`` in the deployment's ``include/``, else the default settings file: with suites
    defined, only the shared defaults, so a command that reads a suite's source asks for one."""
    if args.settings is not None:
        return load_suite(args.settings)
    defaults = default_settings_path()
    if args.suite:
        return load_suite(defaults.parent / SUITES_DIR / f"{args.suite}.yaml")
    if need_suite and defaults.name == DEFAULTS_FILE and any((defaults.parent / SUITES_DIR).glob("*.y*ml")):
        from judgeflow.errors import ConfigError

        names = sorted(p.stem for p in (defaults.parent / SUITES_DIR).glob("*.y*ml"))
        raise ConfigError(f"{defaults.parent} holds suites {names}: name one with --suite")
    return load_suite(defaults)


def _with_warehouse(args: argparse.Namespace, run: Callable[[Suite, Rubric, Warehouse], int]) -> int:
    """Open the suite, rubric and warehouse once for a command, and dispose of the engine after."""
    try:
        suite = _suite(args)
        settings = suite.settings
        rubric = load_rubric(settings.rubric_dir, args.rubric or settings.rubric_names[0])
        warehouse = Warehouse.from_url(args.url or _warehouse_target(settings), settings.source)
    except JudgeflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return run(suite, rubric, warehouse)
    finally:
        warehouse.close()
