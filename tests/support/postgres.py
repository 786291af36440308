"""A throwaway PostgreSQL schema per test (or per module), so tests on the shared server never see
each other's tables and leave nothing behind."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text

from tests.conftest import POSTGRES_URL, require_tcp


@contextmanager
def throwaway_schema(prefix: str) -> Iterator[str]:
    """A new schema named ``<prefix>_<random>``, dropped with everything in it on the way out.

    Fails (never skips) when PostgreSQL does not answer: the CI run starts it."""
    require_tcp("PostgreSQL", ("127.0.0.1", 5432))
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {name}"))
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
        admin.dispose()


def schema_engine(schema: str) -> Engine:
    """An engine whose unqualified table names resolve in ``schema`` (its ``search_path``)."""
    return create_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
