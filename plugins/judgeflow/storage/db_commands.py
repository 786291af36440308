"""``judgeflow db ...``: judgeflow's tables in a team's warehouse, for the person who owns its schema.

- ``judgeflow db upgrade``: create judgeflow's tables, or bring them to this release (a role with DDL
  grants runs it once per release; runs need only DML afterwards);
- ``judgeflow db sql``: print the same DDL, with the version rows, for a DBA to review and run;
- ``judgeflow db current``: the revision the warehouse is at and the one this judgeflow needs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Engine, Integer, String, Uuid
from sqlalchemy.types import TypeEngine

from judgeflow.config import Settings, default_settings_path, load_settings
from judgeflow.errors import ConfigError, WarehouseError
from judgeflow.storage import migrate
from judgeflow.storage.engine import warehouse_engine
from judgeflow.storage.warehouse import Warehouse

ID_TYPES: dict[str, TypeEngine[Any]] = {
    "integer": Integer(),
    "bigint": BigInteger(),
    "text": String(255),
    "uuid": Uuid(),
}


def add_parser(commands: Any) -> None:
    """The ``db`` command and its three subcommands, on ``judgeflow``'s parser."""
    db = commands.add_parser("db", help="judgeflow's tables: upgrade, print their DDL, show the revision")
    sub = db.add_subparsers(dest="db_command", required=True)
    for name, text in (
        ("upgrade", "create judgeflow's tables or bring them to this release"),
        ("sql", "print the DDL (and the version rows) for a DBA to review and run"),
        ("current", "the schema revision of the warehouse, and the one this judgeflow needs"),
    ):
        parser = sub.add_parser(name, help=text)
        parser.add_argument(
            "--settings", type=Path, default=None, help="settings file (default: include/judgeflow.yaml)"
        )
        parser.add_argument("--url", help="SQLAlchemy URL of the warehouse (default: the judge_warehouse connection)")
        if name == "sql":
            parser.add_argument(
                "--dialect", help="print for this dialect without connecting (snowflake, bigquery, ...)"
            )
            parser.add_argument("--since", help="start from this revision (default: an empty warehouse)")
        if name in ("sql", "upgrade"):
            parser.add_argument(
                "--id-type",
                choices=sorted(ID_TYPES),
                help="type of response_id (default: the source table's id column, read from the warehouse)",
            )


def run(args: argparse.Namespace) -> int:
    """Carry out ``judgeflow db <args.db_command>``; returns the exit status."""
    from judgeflow.connections import server_connection, warehouse_target

    settings = load_settings(args.settings or default_settings_path())
    if args.db_command == "sql" and args.dialect:
        if not args.id_type:
            raise ConfigError("judgeflow db sql --dialect needs --id-type: no warehouse is read to learn it")
        print(migrate.sql(args.dialect, id_type=ID_TYPES[args.id_type], since=args.since), end="")
        return 0
    target = args.url or warehouse_target(
        settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path, lookup=server_connection
    )
    engine = warehouse_engine(target)
    try:
        if args.db_command == "current":
            print(f"warehouse: {migrate.current(engine) or 'no judgeflow tables under migrations'}")
            print(f"this judgeflow: {migrate.head()}")
            return 0
        id_type = ID_TYPES[args.id_type] if args.id_type else _source_id_type(engine, settings)
        if args.db_command == "sql":
            since = args.since or migrate.current(engine)
            print(migrate.sql(engine.dialect.name, id_type=id_type, since=since), end="")
            return 0
        before, after = migrate.upgrade(engine, id_type=id_type)
    finally:
        engine.dispose()
    print(f"judgeflow's tables: {before or 'none'} -> {after}" if before != after else f"already at {after}")
    return 0


def _source_id_type(engine: Engine, settings: Settings) -> TypeEngine[Any]:
    """The type of the source table's id column, which every ``response_id`` column takes."""
    try:
        warehouse = Warehouse(engine, settings.source)
    except (ConfigError, WarehouseError) as exc:
        raise ConfigError(
            f"{exc}. judgeflow db reads the source table for the type of its id column: "
            "create it first, or give --id-type"
        ) from exc
    return warehouse.source.c[settings.source.id_column].type


__all__ = ["ID_TYPES", "add_parser", "run"]
