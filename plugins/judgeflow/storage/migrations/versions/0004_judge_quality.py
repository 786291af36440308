"""judge_noise, judge_noise_daily and judge_human_labels: the judge's noise and people's labels.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

New tables only, so an upgrade keeps every existing row; a table a DBA already created is left as
it is. The definitions are a frozen copy (never edit them: later changes are new revisions).
"""

from __future__ import annotations

from typing import Any

from alembic import context, op
from sqlalchemy import Boolean, Column, Date, Index, Integer, MetaData, String, Table, inspect

from judgeflow.storage.dialects import HAS_INDEXES, double, json_type, long_text, timestamp

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    found = None if context.is_offline_mode() else inspect(op.get_bind())
    indexes = op.get_context().dialect.name in HAS_INDEXES
    # the tables listed once, not probed one by one: a probe of a missing table is an error on fakesnow,
    # which aborts the migration's transaction there (and with it the version row's update)
    present = set(found.get_table_names()) if found is not None else set()
    for table in _tables(MetaData(), context.config.attributes["response_id_type"]):
        if table.name in present:
            continue
        op.create_table(table.name, *[c.copy() for c in table.columns])
        for index in table.indexes if indexes else ():
            op.create_index(index.name, table.name, [c.name for c in index.columns])


def downgrade() -> None:
    raise NotImplementedError("judgeflow never drops its tables: they hold the labels people made")


def _tables(metadata: MetaData, id_type: Any) -> list[Table]:
    key = [
        Column("response_id", id_type, primary_key=True),
        Column("rubric_name", String(64), primary_key=True),
        Column("rubric_version", String(64), primary_key=True),
    ]
    noise = Table(
        "judge_noise",
        metadata,
        *[c.copy() for c in key],
        Column("dag_run_id", String(250), nullable=False),
        Column("first_scores", json_type(), nullable=False),
        Column("second_scores", json_type(), nullable=False),
        Column("spread", Integer),
        Column("unstable", Boolean, nullable=False),
        Column("cost_usd", double(), nullable=False),
        Column("error", long_text()),
        Column("recorded_at", timestamp(), nullable=False),
        Index("ix_judge_noise_recorded", "rubric_name", "rubric_version", "recorded_at"),
    )
    daily = Table(
        "judge_noise_daily",
        metadata,
        Column("rubric_name", String(64), primary_key=True),
        Column("rubric_version", String(64), primary_key=True),
        Column("day", Date, primary_key=True),
        Column("responses", Integer, nullable=False),
        Column("pairs", Integer, nullable=False),
        *[Column(f"kappa{s}", double()) for s in ("", "_low", "_high")],
        Column("mean_abs_spread", double()),
        Column("unstable", Integer, nullable=False),
        Column("recorded_at", timestamp(), nullable=False),
    )
    labels = Table(
        "judge_human_labels",
        metadata,
        *[c.copy() for c in key],
        Column("reviewer", String(250), primary_key=True),
        Column("queue", String(32), nullable=False),
        Column("scores", json_type(), nullable=False),
        Column("note", long_text(), nullable=False),
        Column("labelled_at", timestamp(), nullable=False),
        Index("ix_judge_human_labels_version", "rubric_name", "rubric_version", "labelled_at"),
    )
    return [noise, daily, labels]
