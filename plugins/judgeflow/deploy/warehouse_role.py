"""The warehouse side of set-up, on PostgreSQL: the database, judgeflow's tables, judgeflow's role and its grants.

Done as the warehouse's administrator (``--warehouse-admin-url``), so that the connection the tasks
use (``judge_warehouse``) can log in as a role with only what judgeflow needs:

- ``CONNECT`` on the database and ``USAGE`` on the schema of judgeflow's tables;
- ``SELECT`` on the source table (``source.table``), and nothing else of the application's;
- ``SELECT, INSERT, UPDATE, DELETE`` on judgeflow's own tables, and ``USAGE, SELECT`` on their
  sequences (the calibration runs' ids). No ``CREATE``: the tables are made here, as the
  administrator, so the role never needs to create or alter anything.

Every statement is checked first (``pg_database``, ``pg_roles``, ``has_*_privilege``), so a second
run changes nothing and says so. An existing database volume gets all of it too: nothing here
depends on the postgres image's first-start scripts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Integer, MetaData, create_engine, inspect, literal, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from judgeflow.config import Settings, SourceConfig
from judgeflow.deploy.outcome import InitReport, Outcome
from judgeflow.errors import ConfigError
from judgeflow.storage.migrate import VERSION_TABLE

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


def admin_url(url: str) -> URL:
    """The administrator's URL, checked: PostgreSQL, with a database named."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError(f"--warehouse-admin-url: {parsed.get_backend_name()!r} is not PostgreSQL")
    if not parsed.database:
        raise ConfigError("--warehouse-admin-url names no database (…/warehouse)")
    return parsed


def check_role_name(role: str) -> str:
    if not ROLE_NAME.match(role):
        raise ConfigError(f"--warehouse-role {role!r}: use lower-case letters, digits and _ (at most 63)")
    return role


def ensure_database(report: InitReport, url: URL) -> None:
    """Create the warehouse database if the server has none by that name."""
    name = url.database
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if found:
                report.add(f"warehouse database {name}", Outcome.UNCHANGED)
                return
            conn.execute(text(f"CREATE DATABASE {_quote(engine, str(name))}"))
        report.add(f"warehouse database {name}", Outcome.CREATED, f"on {url.host}:{url.port or 5432}")
    finally:
        engine.dispose()


def create_judgeflow_tables(engine: Engine, settings: Settings) -> tuple[list[str], bool]:
    """Create or upgrade judgeflow's tables (``judgeflow db upgrade``); returns (the tables created,
    whether the source exists).

    The one place set-up makes the tables. Their response-id columns take the source table's id
    type, so until the source table is loaded nothing is created (init reports it as waiting)."""
    from judgeflow.storage.warehouse import Warehouse

    source_found = inspect(engine).has_table(settings.source.table)
    if not source_found:
        return [], False
    before = set(inspect(engine).get_table_names())
    Warehouse(engine, settings.source).upgrade_schema()
    after = set(inspect(engine).get_table_names())
    return sorted(after - before), True


def ensure_tables(report: InitReport, engine: Engine, settings: Settings) -> None:
    """:func:`create_judgeflow_tables`, reported; a missing source table is something to wait for."""
    created, source_found = create_judgeflow_tables(engine, settings)
    if created:
        report.add("judgeflow's tables", Outcome.CREATED, ", ".join(created))
    else:
        report.add("judgeflow's tables", Outcome.UNCHANGED, "at the schema's head" if source_found else "none yet")
    if not source_found:
        report.add(
            f"source table {settings.source.table}",
            Outcome.WAITING,
            f"not in {engine.url.database} yet: load it, then run init again (it makes the scores' tables "
            "and grants SELECT on it)",
        )


def judgeflow_tables(engine: Engine, settings: Settings) -> tuple[list[str], list[tuple[str, str]]]:
    """judgeflow's tables that exist, and (table, column) of their serial ids: every table the release
    defines (:func:`judgeflow.storage.schema.all_tables`), so a table a new release adds is granted too."""
    from judgeflow.storage.schema import all_tables

    tables = all_tables(MetaData(), Integer())
    present = set(inspect(engine).get_table_names())
    names = [t.name for t in tables if t.name in present]
    serial = [
        (t.name, t.autoincrement_column.name)
        for t in tables
        if t.name in present and t.autoincrement_column is not None
    ]
    return names, serial


def ensure_role(report: InitReport, engine: Engine, role: str, password: str | None, *, set_password: bool) -> bool:
    """Create judgeflow's login role, or (when its connection is being created) set its password.

    Returns False when the role cannot be used for judgeflow."""
    subject = f"warehouse role {role}"
    with engine.begin() as conn:
        row = conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
        if row is not None and row.rolsuper:
            report.add(subject, Outcome.PROBLEM, "is a superuser; judgeflow's role must hold only its grants")
            return False
        if row is None or set_password:
            if not password:
                report.add(
                    subject,
                    Outcome.PROBLEM,
                    "JUDGEFLOW_WAREHOUSE_PASSWORD is not set: it is the role's password (see .env.example)",
                )
                return False
            secret = _literal(engine, password)
        if row is None:
            name = _quote(engine, role)
            # IF NOT EXISTS: two inits at once (two `compose up`) must not fail on each other.
            conn.execute(
                text(
                    "DO $judgeflow$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                    f"{_literal(engine, role)}) THEN CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB "
                    f"NOCREATEROLE PASSWORD {secret}; END IF; END $judgeflow$"
                )
            )
            report.add(subject, Outcome.CREATED, "LOGIN, no superuser, no CREATEDB, no CREATEROLE")
        elif set_password:
            conn.execute(text(f"ALTER ROLE {_quote(engine, role)} PASSWORD {secret}"))
            report.add(subject, Outcome.UPDATED, "password set for the new judge_warehouse connection")
        else:
            report.add(subject, Outcome.UNCHANGED)
    return True


def source_tables(engine: Engine, sources: Sequence[SourceConfig]) -> list[str]:
    """The tables judgeflow's role reads: each table source that exists, and every relation a query
    source reads, as PostgreSQL's planner names them (``EXPLAIN (FORMAT JSON)``, run as the
    administrator, so a query is checked without being run). A query that does not plan yet (its
    tables are not loaded) reads nothing for now: init again later."""
    found: list[str] = []
    with engine.connect() as conn:
        for source in sources:
            if source.query is None:
                if inspect(conn).has_table(source.table):
                    found.append(source.table)
                continue
            try:
                plan = conn.execute(text("EXPLAIN (FORMAT JSON) " + source.query.strip().rstrip(";"))).scalar()
            except DBAPIError:
                conn.rollback()
                continue
            found += _relations(plan)
    return sorted(set(found))


def _relations(plan: Any) -> list[str]:
    """Every ``Relation Name`` in a JSON plan, however deep."""
    if isinstance(plan, dict):
        own = [str(plan["Relation Name"])] if "Relation Name" in plan else []
        return own + [r for value in plan.values() for r in _relations(value)]
    if isinstance(plan, list):
        return [r for item in plan for r in _relations(item)]
    return []


def ensure_grants(
    report: InitReport, engine: Engine, role: str, settings: Settings, sources: Sequence[SourceConfig] = ()
) -> None:
    """Grant what judgeflow needs and nothing more: SELECT on what every suite on this warehouse
    reads (``sources``; the settings' own source when none are given); only what is missing is granted."""
    tables, serial = judgeflow_tables(engine, settings)
    readable = source_tables(engine, sources or [settings.source])
    with engine.begin() as conn:
        database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
        wanted: list[tuple[str, str, str, str]] = [  # (check function, object, privilege, GRANT object)
            ("has_database_privilege", database, "CONNECT", f"DATABASE {_quote(engine, database)}"),
            ("has_schema_privilege", schema, "USAGE", f"SCHEMA {_quote(engine, schema)}"),
        ]
        for source in readable:
            wanted.append(("has_table_privilege", source, "SELECT", f"TABLE {_quote(engine, source)}"))
        for table in tables:
            wanted += [("has_table_privilege", table, p, f"TABLE {_quote(engine, table)}") for p in TABLE_PRIVILEGES]
        if inspect(conn).has_table(VERSION_TABLE):  # every run checks the schema's revision before judging
            wanted.append(("has_table_privilege", VERSION_TABLE, "SELECT", f"TABLE {_quote(engine, VERSION_TABLE)}"))
        for table, column in serial:
            sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}).scalar()
            if sequence:
                wanted += [("has_sequence_privilege", sequence, p, f"SEQUENCE {sequence}") for p in ("USAGE", "SELECT")]
        missing = [
            (privilege, target)
            for check, obj, privilege, target in wanted
            if not conn.execute(text(f"SELECT {check}(:r, :o, :p)"), {"r": role, "o": obj, "p": privilege}).scalar()
        ]
        for privilege, target in missing:
            conn.execute(text(f"GRANT {privilege} ON {target} TO {_quote(engine, role)}"))
    held = f"{len(wanted)} privileges: CONNECT on {database}, USAGE on {schema}"
    held += (f", SELECT on {', '.join(readable)}" if readable else "") + f", DML on {len(tables)} tables"
    if missing:
        report.add(f"grants to {role}", Outcome.UPDATED, f"granted {len(missing)}: {_grouped(missing)}")
    else:
        report.add(f"grants to {role}", Outcome.UNCHANGED, held)


def _grouped(grants: list[tuple[str, str]]) -> str:
    """``SELECT on TABLE a; SELECT, INSERT on TABLE b, TABLE c``: the objects grouped by what they got."""
    by_target: dict[str, list[str]] = {}
    for privilege, target in grants:
        by_target.setdefault(target, []).append(privilege)
    by_set: dict[str, list[str]] = {}
    for target, privileges in by_target.items():
        by_set.setdefault(", ".join(privileges), []).append(target.replace('"', ""))
    return "; ".join(f"{privileges} on {', '.join(targets)}" for privileges, targets in by_set.items())


def _quote(engine: Engine, identifier: str) -> str:
    return engine.dialect.identifier_preparer.quote_identifier(identifier)


def _literal(engine: Engine, value: str) -> str:
    """A SQL string literal (CREATE/ALTER ROLE take no bind parameters)."""
    if "$judgeflow$" in value:
        raise ConfigError("the warehouse password may not contain '$judgeflow$'")
    return str(literal(value).compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
