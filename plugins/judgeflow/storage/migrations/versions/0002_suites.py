"""judge_runs.suite and judge_runs.sample_rate: which suite's DAG ran, and the rate it sampled at.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Both nullable: a run recorded before suites has no suite (it was the one default suite), and a run
recorded before sampling judged everything (a rate of 1).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import inspect

from judgeflow.storage.dialects import double

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = set()
    if not op.get_context().as_sql:  # a table a DBA already gave the columns keeps them
        present = {c["name"] for c in inspect(op.get_bind()).get_columns("judge_runs")}
    if "suite" not in present:
        op.add_column("judge_runs", sa.Column("suite", sa.String(64), nullable=True))
    if "sample_rate" not in present:
        op.add_column("judge_runs", sa.Column("sample_rate", double(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("judgeflow never drops its columns: they hold the run history")
