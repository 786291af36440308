"""``judgeflow deploy init``: everything a deployment needs before its first run, in order, then checks.

1. the Fernet key is set (else connection secrets sit in plain text in the metadata database);
2. ``airflow db migrate``; stored connections saved in plain text are encrypted;
3. the ``judge_api`` pool;
4. the judge (``anthropic_default``): the real API with ``ANTHROPIC_API_KEY``, or the emulator only
   when ``--emulator-url`` asks for it;
5. the warehouse (with ``--warehouse-admin-url``): its database, judgeflow's tables, judgeflow's
   role and grants, and ``judge_warehouse`` logging in as that role;
6. the cache (``--cache-url``): ``judge_cache`` with its own Redis database in ``extra.db``;
7. on-call (``SLACK_WEBHOOK_URL``): ``slack_oncall``;
8. checks: the warehouse login works and is not a superuser; the cache answers and is not the
   broker's database.

A connection that exists anywhere tasks look (an ``AIRFLOW_CONN_*`` variable, a secrets backend,
the metadata database) is never replaced; what is wrong with it is reported instead. Secrets come
from the environment only (``ANTHROPIC_API_KEY``, ``JUDGEFLOW_WAREHOUSE_PASSWORD``,
``SLACK_WEBHOOK_URL``), never from the command line, where ``ps`` would show them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from judgeflow.config import Settings, SourceConfig
from judgeflow.deploy import metadata, specs, warehouse_role
from judgeflow.deploy.outcome import InitReport, Outcome
from judgeflow.errors import ConfigError
from judgeflow.suite import Suite

if TYPE_CHECKING:
    from judgeflow.judging.redis_client import RedisTarget

log = logging.getLogger(__name__)

JUDGE_POOL = "judge_api"
"""The pool of ``score_batch`` (``JUDGE_POOL`` in ``dags/llm_judge_daily.py``; a test holds them equal)."""


@dataclass(frozen=True, kw_only=True)
class InitOptions:
    """What one run of init is asked to do; secrets are read from the environment by :mod:`command`."""

    settings: Settings
    suites: tuple[Suite, ...] = ()
    """The deployment's suites (``include/suites/``): their sources are granted, the connections
    they name beyond the shared ones are checked."""
    pool_slots: int = 8
    emulator_url: str | None = None
    anthropic_api_key: str | None = None
    cache_url: str | None = None
    warehouse_admin_url: str | None = None
    warehouse_role: str = "judgeflow"
    warehouse_password: str | None = None
    slack_webhook_url: str | None = None
    migrate: bool = True


def run_init(options: InitOptions) -> InitReport:
    """Every step, in order; a step's :class:`ConfigError` is a problem of that step, and the rest go on."""
    report = InitReport()
    ids = options.settings.connections
    if not metadata.fernet_configured():
        report.add(
            "fernet key",
            Outcome.PROBLEM,
            "AIRFLOW__CORE__FERNET_KEY is empty: connection passwords would be stored in plain text",
        )
    if options.migrate:
        metadata.migrate(report)
        if report.problems and report.problems[-1].subject == "metadata database":
            return report  # nothing else can be stored
    if not metadata.encrypt_stored_connections(report):
        return report  # no stored connection can be read: nothing else is safe to decide
    metadata.ensure_pool(report, JUDGE_POOL, options.pool_slots)
    for step in (_judge, _warehouse, _cache, _slack):
        try:
            step(report, options)
        except ConfigError as exc:
            report.add(step.__name__.strip("_"), Outcome.PROBLEM, str(exc))
    _check_warehouse_login(report, ids.warehouse, options.settings)
    _check_suite_connections(report, options)
    return report


def _sources_on(options: InitOptions, conn_id: str) -> list[SourceConfig]:
    """The sources judgeflow's role reads through warehouse connection ``conn_id``: every suite's on it."""
    sources = [s.settings.source for s in options.suites if s.settings.connections.warehouse == conn_id]
    return sources or [options.settings.source]


def _check_suite_connections(report: InitReport, options: InitOptions) -> None:
    """A suite may name its own connections (its warehouse, its on-call channel): init creates the
    shared ones only, so each other one must exist; what is missing waits for the operator."""
    shared = set(options.settings.connections.model_dump().values())
    named: dict[str, list[str]] = {}
    for suite in options.suites:
        for conn_id in suite.settings.connections.model_dump().values():
            if conn_id not in shared:
                named.setdefault(conn_id, []).append(suite.name)
    for conn_id, suites in sorted(named.items()):
        existing, where = metadata.find_connection(conn_id)
        subject = f"connection {conn_id}"
        if existing is None:
            detail = f"named by suite {', '.join(suites)}: add it (airflow connections add)"
            report.add(subject, Outcome.WAITING, detail)
        else:
            report.add(subject, Outcome.UNCHANGED, f"{where} (suite {', '.join(suites)})")


def _judge(report: InitReport, options: InitOptions) -> None:
    conn_id = options.settings.connections.anthropic
    subject = f"connection {conn_id}"
    existing, where = metadata.find_connection(conn_id)
    if existing is not None:
        problem = specs.judge_problem(conn_id, existing, emulator_url=options.emulator_url)
        if problem:
            report.add(subject, Outcome.PROBLEM, f"({where}) {problem}")
        else:
            target = existing.host or "the Anthropic API"
            report.add(subject, Outcome.UNCHANGED, f"{where}: {target}")
        return
    spec = specs.judge_spec(conn_id, api_key=options.anthropic_api_key, emulator_url=options.emulator_url)
    metadata.create_connection(spec)
    target = f"the emulator at {spec.host} (asked for with --emulator-url)" if spec.host else "the Anthropic API"
    report.add(subject, Outcome.CREATED, target)


def _warehouse(report: InitReport, options: InitOptions) -> None:
    conn_id = options.settings.connections.warehouse
    existing, where = metadata.find_connection(conn_id)
    if not options.warehouse_admin_url:
        detail = (
            f"{where}, kept" if existing is not None else "no --warehouse-admin-url: the embedded SQLite file serves"
        )
        report.add(f"connection {conn_id}", Outcome.UNCHANGED if existing is not None else Outcome.SKIPPED, detail)
        return
    from judgeflow.storage.engine import warehouse_engine

    url = warehouse_role.admin_url(options.warehouse_admin_url)
    role = warehouse_role.check_role_name(options.warehouse_role)
    warehouse_role.ensure_database(report, url)
    engine = warehouse_engine(url.render_as_string(hide_password=False))
    try:
        warehouse_role.ensure_tables(report, engine, options.settings)
        if not warehouse_role.ensure_role(
            report, engine, role, options.warehouse_password, set_password=existing is None
        ):
            return
        warehouse_role.ensure_grants(report, engine, role, options.settings, _sources_on(options, conn_id))
    finally:
        engine.dispose()
    if existing is not None:
        report.add(f"connection {conn_id}", Outcome.UNCHANGED, f"{where}, kept")
        return
    spec = specs.warehouse_spec(conn_id, url, role=role, password=str(options.warehouse_password))
    metadata.create_connection(spec)
    report.add(f"connection {conn_id}", Outcome.CREATED, spec.where())


def _cache(report: InitReport, options: InitOptions) -> None:
    from airflow.configuration import conf

    from judgeflow.judging.redis_client import RedisTarget

    conn_id = options.settings.connections.cache
    subject = f"connection {conn_id}"
    broker = specs.broker_place(conf.get("celery", "broker_url", fallback=""))
    existing, where = metadata.find_connection(conn_id)
    if existing is None and not options.cache_url:
        report.add(subject, Outcome.SKIPPED, "no --cache-url: an embedded SQLite cache, limits per task")
        return
    if existing is None:
        spec = specs.cache_spec(conn_id, str(options.cache_url))
        problem = specs.cache_problem(conn_id, specs.redis_place(str(options.cache_url), what=conn_id), broker)
        if problem:
            report.add(subject, Outcome.PROBLEM, problem)
            return
        metadata.create_connection(spec)
        report.add(subject, Outcome.CREATED, spec.where())
        existing, where = metadata.find_connection(conn_id)
        target = RedisTarget.from_connection(conn_id, existing)
    else:
        target = RedisTarget.from_connection(conn_id, existing)
        place = specs.RedisPlace(target.host, target.port, target.db)
        problem = specs.cache_problem(conn_id, place, broker)
        if problem:
            report.add(subject, Outcome.PROBLEM, f"({where}) {problem}")
            return
        if existing.extra_dejson.get("db") is None:
            detail = f"names its database ({place.db}) only in the URI path; RedisHook reads extra.db, and would use 0"
            report.add(subject, Outcome.WARNING, f"({where}) {detail}")
        else:
            report.add(subject, Outcome.UNCHANGED, f"{where}: {place}")
    _ping(report, target)


def _ping(report: InitReport, target: RedisTarget) -> None:
    from judgeflow.judging.redis_client import sync_client

    client = sync_client(target)
    try:
        client.ping()
    except Exception as exc:
        report.add("cache reachable", Outcome.WARNING, f"{target.describe()}: {exc}")
    finally:
        client.close()


def _slack(report: InitReport, options: InitOptions) -> None:
    conn_id = options.settings.connections.slack
    subject = f"connection {conn_id}"
    existing, where = metadata.find_connection(conn_id)
    if existing is not None:
        report.add(subject, Outcome.UNCHANGED, where)
    elif options.slack_webhook_url:
        metadata.create_connection(specs.slack_spec(conn_id, options.slack_webhook_url))
        report.add(subject, Outcome.CREATED, "incoming webhook")
    else:
        report.add(subject, Outcome.SKIPPED, "no SLACK_WEBHOOK_URL: alerts go to the task logs")


def _check_warehouse_login(report: InitReport, conn_id: str, settings: Settings) -> None:
    """Log in as tasks will, read the source and a judgeflow table; a superuser login is a warning."""
    from sqlalchemy import create_engine, inspect, text

    from judgeflow.connections import server_connection, warehouse_url

    if metadata.find_connection(conn_id)[0] is None:
        return
    try:
        url = warehouse_url(conn_id, embedded_path=settings.embedded_warehouse_path, lookup=server_connection)
    except ConfigError as exc:
        report.add(f"login {conn_id}", Outcome.PROBLEM, str(exc))
        return
    if not url.startswith("postgresql"):
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            user, superuser = conn.execute(
                text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            ).one()
            readable = [
                table
                for table in (settings.source.table, "judge_scores")
                if inspect(conn).has_table(table)
                and conn.execute(text("SELECT has_table_privilege(:t, 'SELECT')"), {"t": table}).scalar()
            ]
    except Exception as exc:
        report.add(f"login {conn_id}", Outcome.PROBLEM, f"cannot log in as tasks will: {exc}")
        return
    finally:
        engine.dispose()
    if superuser:
        report.add(
            f"login {conn_id}",
            Outcome.WARNING,
            f"logs in as {user}, a superuser: delete the connection and run init with --warehouse-admin-url "
            "to switch to judgeflow's own role",
        )
    else:
        report.add(f"login {conn_id}", Outcome.UNCHANGED, f"as {user}; can read {', '.join(readable) or 'nothing yet'}")
