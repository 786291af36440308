"""judgeflow's own tables under Alembic: upgrade them, print their DDL, check their version.

The revisions live in ``storage/migrations/versions/``; the warehouse records the one it is at in
``judgeflow_alembic_version`` (never ``alembic_version``, which may be the team's own). Who upgrades:

- the embedded SQLite file (and any SQLite warehouse) is judgeflow's own: it is upgraded when a run
  or a command first opens it, so ``make demo`` and a fresh clone need no extra command;
- a team's warehouse is upgraded only by ``judgeflow db upgrade`` (or by a DBA running the DDL that
  ``judgeflow db sql`` prints): schema changes there are a decision, and the run's role needs no DDL
  grant. A run against an older or newer schema stops before judging (:func:`check`), naming both
  revisions and the command to run.

Tables made before migrations existed (by ``create_all``) are taken over in place: the baseline
revision creates only what is missing and adds the columns and indexes older releases lacked.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl
from alembic.ddl.postgresql import PostgresqlImpl
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, String, inspect
from sqlalchemy.types import TypeEngine

from judgeflow.errors import ConfigError
from judgeflow.storage.engine import errors_as

log = logging.getLogger(__name__)

VERSION_TABLE = "judgeflow_alembic_version"
MIGRATIONS = Path(__file__).with_name("migrations")
UPGRADE_COMMAND = "judgeflow db upgrade"
SQL_COMMAND = "judgeflow db sql"
# Tables of the baseline: their presence without a version table means "made by create_all".
BASELINE_TABLES = ("judge_scores", "judge_runs", "judge_calibration_runs")


class _DuckDBImpl(PostgresqlImpl):
    """Alembic knows no DuckDB; duckdb-engine speaks PostgreSQL's dialect."""

    __dialect__ = "duckdb"


class _SnowflakeImpl(DefaultImpl):
    __dialect__ = "snowflake"
    transactional_ddl = False


class _DatabricksImpl(DefaultImpl):
    __dialect__ = "databricks"
    transactional_ddl = False


def alembic_config(**attributes: Any) -> Config:
    """A config with no ini file: the script location is in the package, ``attributes`` go to env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes.update(attributes)
    return config


def head() -> str:
    """The revision this judgeflow's tables are defined at."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None, "the migrations have a head"
    return revision


def current(engine: Engine) -> str | None:
    """The revision the warehouse is at, or ``None`` when it has no ``judgeflow_alembic_version``."""
    with errors_as("read judgeflow's schema revision"), engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _exists(revision: str) -> bool:
    return any(script.revision == revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def upgrade(engine: Engine, *, id_type: TypeEngine[Any] | None) -> tuple[str | None, str]:
    """Bring judgeflow's tables to :func:`head`; returns (from, to). Idempotent.

    ``id_type`` is the source table's id type (every ``response_id`` column takes it); ``None``
    reuses the type of an existing ``judge_scores.response_id``."""
    before = current(engine)
    target = head()
    if before is not None and not _exists(before):
        raise ConfigError(_newer(before, target))
    if before == target:
        return before, target
    id_type = id_type if id_type is not None else existing_id_type(engine)
    with errors_as("upgrade judgeflow's tables"), engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn, response_id_type=id_type), "head")
    log.info("judgeflow's tables upgraded from %s to %s", before or "nothing", target)
    return before, target


def sql(dialect_name: str, *, id_type: TypeEngine[Any], since: str | None = None) -> str:
    """The DDL that takes a warehouse of ``dialect_name`` from ``since`` (default: nothing) to head,
    with the version table's rows, for a DBA to review and run."""
    out = io.StringIO()
    config = alembic_config(dialect_name=dialect_name, response_id_type=id_type)
    config.output_buffer = out
    command.upgrade(config, f"{since}:head" if since else "head", sql=True)
    return out.getvalue()


def check(engine: Engine) -> None:
    """Stop before judging when the warehouse's tables are not at this judgeflow's revision."""
    found, target = current(engine), head()
    if found == target:
        return
    if found is None:
        legacy = _has_baseline_tables(engine)
        state = "were created by a judgeflow before migrations" if legacy else "are not in the warehouse yet"
        raise ConfigError(
            f"judgeflow's tables {state} ({VERSION_TABLE} not found; this judgeflow's schema revision is "
            f"{target}): run `{UPGRADE_COMMAND}`, or have a DBA run the DDL `{SQL_COMMAND}` prints"
        )
    if not _exists(found):
        raise ConfigError(_newer(found, target))
    raise ConfigError(
        f"judgeflow's tables are at schema revision {found}, this judgeflow needs {target}: "
        f"run `{UPGRADE_COMMAND}` (or have a DBA run `{SQL_COMMAND} --since {found}`) before the next run"
    )


def existing_id_type(engine: Engine) -> TypeEngine[Any]:
    """``judge_scores.response_id``'s type when the table exists; else text, for a warehouse that has
    never seen a response (``judgeflow calibrate`` on a new SQLite file)."""
    found = inspect(engine)
    if found.has_table("judge_scores"):
        for column in found.get_columns("judge_scores"):
            if column["name"] == "response_id":
                return column["type"]
    return String(255)


def _has_baseline_tables(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names())
    return any(name in names for name in BASELINE_TABLES)


def _newer(found: str, target: str) -> str:
    return (
        f"judgeflow's tables are at schema revision {found}, which this judgeflow (revision {target}) does not "
        f"know: a newer judgeflow upgraded them. Install that judgeflow on every Airflow worker "
        f"(its `judgeflow db current` names the revision) instead of running this one"
    )


__all__ = ["VERSION_TABLE", "check", "current", "existing_id_type", "head", "sql", "upgrade"]
