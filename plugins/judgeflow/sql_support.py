"""What every module that talks to the warehouse shares: one error type, one timestamp rule."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from judgeflow.errors import WarehouseError


@contextmanager
def errors_as(action: str) -> Iterator[None]:
    """Turn a database error into a :class:`WarehouseError` naming what was being done (the task retries)."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise WarehouseError(f"warehouse: could not {action}: {exc}") from exc


def as_utc(moment: dt.datetime) -> dt.datetime:
    """SQLite gives timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
