"""Alembic's environment for judgeflow's own tables: run by :mod:`judgeflow.storage.migrate`, never by hand.

The caller puts what a revision needs in ``config.attributes``: ``connection`` (online) or
``dialect_name`` (offline, ``judgeflow db sql``), and ``response_id_type`` (the source table's id
type, which every ``response_id`` column takes). The version table is ``judgeflow_alembic_version``,
so it never meets the team's own Alembic history in the same schema.
"""

from __future__ import annotations

from alembic import context

from judgeflow.storage.migrate import VERSION_TABLE

config = context.config

if context.is_offline_mode():
    context.configure(
        dialect_name=config.attributes["dialect_name"],
        literal_binds=True,
        version_table=VERSION_TABLE,
        transactional_ddl=False,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    context.configure(connection=connection, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
