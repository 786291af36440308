"""The alert lifecycle: each regression's frozen reference, and the regressions that closed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

``judge_alert_state`` gets nullable columns only: a regression saved before this revision has no
reference, and the alert step then takes the baseline of the day's comparison as its reference the
next time it runs. ``judge_alert_history`` is new: recovered and accepted regressions, so later
baselines leave out the days a regression was open and an accepted level shift re-baselines.
Existing rows are kept; a column a DBA already added is kept as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import inspect

from judgeflow.storage.dialects import double, long_text, timestamp

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _state_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("reference_mean", double(), nullable=True),
        sa.Column("reference_low", double(), nullable=True),
        sa.Column("reference_high", double(), nullable=True),
        sa.Column("reference_n", sa.Integer, nullable=True),
        sa.Column("reference_start", timestamp(), nullable=True),
        sa.Column("reference_end", timestamp(), nullable=True),
        sa.Column("last_told_at", timestamp(), nullable=True),
        sa.Column("back_days", sa.Integer, nullable=True),
        sa.Column("moved_for", timestamp(), nullable=True),
        sa.Column("seen_days", sa.Integer, nullable=True),
    ]


def upgrade() -> None:
    found = None if op.get_context().as_sql else inspect(op.get_bind())
    present = {c["name"] for c in found.get_columns("judge_alert_state")} if found is not None else set()
    for column in _state_columns():
        if column.name not in present:
            op.add_column("judge_alert_state", column)
    # the tables listed once, not probed one by one: a probe of a missing table is an error on
    # fakesnow, which aborts the migration's transaction there
    if found is None or "judge_alert_history" not in set(found.get_table_names()):
        op.create_table(
            "judge_alert_history",
            sa.Column("rubric_name", sa.String(64), primary_key=True),
            sa.Column("rubric_version", sa.String(64), primary_key=True),
            sa.Column("regression", sa.String(300), primary_key=True),
            sa.Column("started_at", timestamp(), primary_key=True),
            sa.Column("ended_at", timestamp(), nullable=False),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("reference_mean", double(), nullable=True),
            sa.Column("difference", double(), nullable=True),
            sa.Column("accepted_by", sa.String(200), nullable=True),
            sa.Column("accepted_at", timestamp(), nullable=True),
            sa.Column("reason", long_text(), nullable=True),
        )


def downgrade() -> None:
    raise NotImplementedError("judgeflow never drops its columns or tables: they hold the alert history")
