"""Airflow's side of set-up: the metadata database, the ``judge_api`` pool, connections, their encryption.

Pools and connections go through Airflow's own models (``airflow.models.Pool``, ``Connection``) in
this process rather than ``airflow pools set`` / ``airflow connections add`` subprocesses: one
process instead of one per object (each ``airflow`` command costs seconds of imports), and the
answer is a value (the pool's slots, where a connection was found) rather than text to parse.
``airflow connections add`` also cannot say whether an ``AIRFLOW_CONN_*`` variable or a secrets
backend already defines the connection; :func:`find_connection` asks the way tasks will.

The migration is ``airflow db migrate`` itself, as a subprocess: it is Airflow's supported entry
point, and its internals (provider database managers, locks) are not judgeflow's to call. Whether it
changed anything is read from Alembic's revision before and after.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from judgeflow.deploy.outcome import InitReport, Outcome
from judgeflow.deploy.specs import ConnSpec

POOL_DESCRIPTION = "judgeflow score tasks"


def airflow_command() -> str:
    """The ``airflow`` script beside this interpreter (a virtualenv), else the one on PATH."""
    beside = Path(sys.executable).parent / "airflow"
    return str(beside) if beside.exists() else (shutil.which("airflow") or "airflow")


def revision() -> str | None:
    """The metadata database's Alembic revision; None before the first migration."""
    from airflow import settings
    from alembic.runtime.migration import MigrationContext

    with settings.get_engine().connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(report: InitReport) -> None:
    """``airflow db migrate``; created (an empty database), updated (an upgrade) or unchanged."""
    before = revision()
    result = subprocess.run(
        [airflow_command(), "db", "migrate"], capture_output=True, text=True, check=False, env=os.environ.copy()
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout)[-2000:]
        report.add("metadata database", Outcome.PROBLEM, f"airflow db migrate failed ({result.returncode}):\n{tail}")
        return
    after = revision()
    if before is None:
        report.add("metadata database", Outcome.CREATED, f"migrated to {after}")
    elif before != after:
        report.add("metadata database", Outcome.UPDATED, f"migrated {before} -> {after}")
    else:
        report.add("metadata database", Outcome.UNCHANGED, f"at {after}")


def ensure_pool(report: InitReport, name: str, slots: int) -> None:
    """Create the pool score tasks run in; an existing pool keeps its slots (the operator may have sized it)."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        pool = Pool.get_pool(name, session=session)
        if pool is None:
            Pool.create_or_update_pool(name, slots, POOL_DESCRIPTION, include_deferred=False, session=session)
            report.add(f"pool {name}", Outcome.CREATED, f"{slots} slots")
            return
        kept = "" if pool.slots == slots else f" (kept; --pool-slots {slots} sizes a new pool only)"
        report.add(f"pool {name}", Outcome.UNCHANGED, f"{pool.slots} slots{kept}")


def find_connection(conn_id: str) -> tuple[Any | None, str]:
    """The connection tasks would get, and where it comes from; (None, "") when there is none."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    try:
        conn = Connection.get_connection_from_secrets(conn_id)
    except AirflowNotFoundException:
        return None, ""
    if os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"):
        return conn, "environment variable"
    with create_session() as session:
        stored = session.scalar(select(Connection.id).where(Connection.conn_id == conn_id))
    return conn, "metadata database" if stored is not None else "secrets backend"


def create_connection(spec: ConnSpec) -> None:
    """Add the connection to the metadata database (its password and extra encrypted with the Fernet key)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.add(Connection(**spec.fields()))


def fernet_configured() -> bool:
    from airflow.configuration import conf

    return bool(conf.get("core", "fernet_key", fallback="").strip())


def encrypt_stored_connections(report: InitReport) -> bool:
    """Encrypt connections stored in plain text (saved before a Fernet key was set); the values stay.

    Returns False, with a problem, when a stored secret cannot be decrypted with the configured key:
    the key changed (a regenerated ``.env``), and nothing stored can be read until it is restored."""
    from airflow.models.connection import Connection
    from airflow.models.crypto import get_fernet
    from airflow.utils.session import create_session
    from cryptography.fernet import InvalidToken
    from sqlalchemy import and_, or_, select

    fernet = get_fernet()
    if not fernet.is_encrypted:
        return True  # no key: the Fernet check reports it
    table = Connection.__table__
    with create_session() as session:
        rows = session.execute(
            select(table.c.conn_id, table.c.password, table.c.is_encrypted, table.c.extra, table.c.is_extra_encrypted)
        ).all()
        unreadable = []
        for row in rows:
            for value, encrypted in ((row.password, row.is_encrypted), (row.extra, row.is_extra_encrypted)):
                try:
                    if value and encrypted:
                        fernet.decrypt(value.encode())
                except InvalidToken:
                    unreadable.append(row.conn_id)
                    break
        if unreadable:
            report.add(
                "stored connections",
                Outcome.PROBLEM,
                f"{', '.join(unreadable)} cannot be decrypted with AIRFLOW__CORE__FERNET_KEY: the key changed. "
                "Put the old key back in .env (or NEW,OLD in the variable and run `airflow rotate-fernet-key`)",
            )
            return False
        plain = and_(table.c.password.isnot(None), table.c.is_encrypted.isnot(True))
        plain_extra = and_(table.c.extra.isnot(None), table.c.is_extra_encrypted.isnot(True))
        encrypted = []
        for conn in session.scalars(select(Connection).where(or_(plain, plain_extra))):
            password, extra = conn.get_password(), conn.get_extra()
            if password and not conn.is_encrypted:
                conn.password = password
            if extra and not conn.is_extra_encrypted:
                conn.extra = extra
            encrypted.append(conn.conn_id)
    if encrypted:
        report.add("stored connections", Outcome.UPDATED, f"encrypted with the Fernet key: {', '.join(encrypted)}")
    else:
        report.add("stored connections", Outcome.UNCHANGED, f"{len(rows)}, all encrypted")
    return True
