"""judgeflow's tables under Alembic, on SQLite files: head agrees with the models, and runs refuse a schema
of another revision with a message that names both revisions and the command to run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Integer, MetaData, create_engine, inspect

from judgeflow.errors import ConfigError
from judgeflow.storage import migrate
from judgeflow.storage.schema import all_tables

HEAD = migrate.head()
NEXT = f"{int(HEAD) + 1:04d}"
NEXT_REVISION = '''"""A nullable column, as a later release would add one (docs/development.md)."""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("judge_runs", sa.Column("note", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("judge_runs", "note")
'''


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_engine(f"sqlite:///{tmp_path / 'warehouse.sqlite'}")


@pytest.fixture
def newer_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """judgeflow's migrations plus one more revision, as the next release would ship them."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    text = NEXT_REVISION.replace("{next}", NEXT).replace("{head}", HEAD)
    (folder / "versions" / f"{NEXT}_note.py").write_text(text, encoding="utf-8")
    monkeypatch.setattr(migrate, "MIGRATIONS", folder)
    return folder


def test_head_creates_exactly_the_tables_the_code_defines(engine: Engine) -> None:
    migrate.upgrade(engine, id_type=Integer())

    models = MetaData()
    all_tables(models, Integer())
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models)
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == migrate.VERSION_TABLE)]
    assert diff == []  # a change to storage/schema.py without a revision fails here
    assert migrate.current(engine) == migrate.head()
    migrate.check(engine)  # at head: no complaint


def test_upgrade_is_idempotent_and_keeps_rows(engine: Engine) -> None:
    migrate.upgrade(engine, id_type=Integer())
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO judge_alert_state (rubric_name, rubric_version, regression, difference, opened_at) "
            "VALUES ('r', 'v', 'overall', -0.5, '2026-11-01')"
        )

    assert migrate.upgrade(engine, id_type=None) == (migrate.head(), migrate.head())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM judge_alert_state").scalar_one() == 1


def test_a_warehouse_without_the_tables_is_refused_with_the_command(engine: Engine) -> None:
    with pytest.raises(ConfigError, match=rf"not in the warehouse yet.*revision is {HEAD}.*`judgeflow db upgrade`"):
        migrate.check(engine)


def test_an_older_schema_names_both_revisions_and_the_command(engine: Engine, newer_release: Path) -> None:
    migrate.upgrade(engine, id_type=Integer())
    with engine.begin() as conn:  # back to what this release leaves: its head, no note column
        conn.exec_driver_sql(f"UPDATE judgeflow_alembic_version SET version_num = '{HEAD}'")
        conn.exec_driver_sql("ALTER TABLE judge_runs DROP COLUMN note")

    with pytest.raises(
        ConfigError, match=rf"at schema revision {HEAD}, this judgeflow needs {NEXT}.*judgeflow db upgrade"
    ):
        migrate.check(engine)
    assert migrate.upgrade(engine, id_type=None) == (HEAD, NEXT)
    assert "note" in {c["name"] for c in inspect(engine).get_columns("judge_runs")}
    migrate.check(engine)


def test_a_newer_schema_names_both_revisions(
    engine: Engine, newer_release: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate.upgrade(engine, id_type=Integer())  # by the newer release
    monkeypatch.undo()  # this judgeflow: its own head

    with pytest.raises(
        ConfigError, match=rf"at schema revision {NEXT}, which this judgeflow \(revision {HEAD}\) does not"
    ):
        migrate.check(engine)
    with pytest.raises(ConfigError, match=NEXT):
        migrate.upgrade(engine, id_type=None)  # and never "upgrades" it backwards
