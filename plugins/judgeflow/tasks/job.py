"""What one task of one run works with, opened once when the task starts and closed when it ends.

A task turns its Airflow context and settings file into typed objects here, once: the run
(:class:`RunContext`), the settings, the rubric, the warehouse (one engine, the source table
reflected once) and, when it judges, the verdict cache. :meth:`Job.close` disposes of the engine's
connection pool and closes the cache, so a worker that runs thousands of tasks does not keep a pool
per task it ever ran. Below this module nothing reads the Airflow context or the environment.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from judgeflow.config import RunParams, Settings, load_settings, parse_run_params
from judgeflow.connections import warehouse_target
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.storage.warehouse import Warehouse

if TYPE_CHECKING:
    from judgeflow.judging.budget import Cap
    from judgeflow.judging.verdict_cache import VerdictCache

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a task needs to know about its DAG run, read once from the Airflow context."""

    dag_id: str
    run_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    params: RunParams

    @property
    def run_key(self) -> str:
        return f"{self.dag_id}/{self.run_id}"

    @classmethod
    def from_airflow(cls, context: Any) -> RunContext:
        """The day to judge.

        Airflow 3's ``@daily`` (a cron trigger) gives zero-length data intervals, and manual or
        asset-triggered runs may have none: then the run judges the day before its logical date
        (or, without one, before ``run_after``). A real interval (start < end) is used as it is.
        """
        dag_run = context["dag_run"]
        start = context.get("data_interval_start")
        end = context.get("data_interval_end")
        if start is None or end is None or start >= end:
            end = context.get("logical_date") or dag_run.run_after
            start = end - dt.timedelta(days=1)
        return cls(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            interval_start=_utc(start),
            interval_end=_utc(end),
            params=parse_run_params(dict(context.get("params") or {})),
        )


class Job:
    """Settings, rubric and warehouse for one task of one run; a context manager that closes them."""

    def __init__(self, run: RunContext, settings: Settings, rubric: Rubric, warehouse: Warehouse) -> None:
        self.run = run
        self.settings = settings
        self.rubric = rubric
        self.warehouse = warehouse
        self._cache: VerdictCache | None = None

    @classmethod
    def open(cls, settings_path: str, context: Any) -> Job:
        """Read the context, settings and rubric and connect to the warehouse: once per task."""
        run = RunContext.from_airflow(context)
        settings = load_settings_for(settings_path)
        rubric = load_rubric(settings.rubric_dir, run.params.rubric or settings.rubric)
        url = warehouse_target(settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path)
        return cls(run, settings, rubric, Warehouse.from_url(url, settings.source))

    @property
    def mode(self) -> str:
        """``realtime`` or ``batch``: the run's param, else the settings."""
        return self.run.params.mode or self.settings.mode

    @property
    def cache(self) -> VerdictCache:
        """The verdict cache, opened on first use and closed with the job."""
        if self._cache is None:
            from judgeflow.judging.verdict_cache import open_cache

            self._cache = open_cache(self.settings.cache, redis_conn_id=self.settings.connections.cache)
        return self._cache

    def budget_caps(self, *, now: dt.datetime | None = None) -> list[Cap]:
        """The run and day caps, seeded with what the warehouse says this run and this day already
        spent, so every task (and every retry, realtime or after a Message Batch) counts against them."""
        from judgeflow.judging.budget import budget_caps

        today = (now or dt.datetime.now(dt.UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
        run_spent, day_spent = self.warehouse.spent_usd(
            dag_run_id=self.run.run_id, day_start=today, day_end=today + dt.timedelta(days=1)
        )
        return budget_caps(
            self.settings.budget,
            run_key=self.run.run_key,
            day=f"{today:%Y-%m-%d}",
            run_spent=run_spent,
            day_spent=day_spent,
        )

    def close(self) -> None:
        """Close the cache and dispose of the warehouse engine; safe to call twice."""
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self.warehouse.close()

    def __enter__(self) -> Job:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def load_settings_for(settings_path: str) -> Settings:
    """``JUDGEFLOW_SETTINGS`` in the worker's environment overrides the DAG's settings file."""
    return load_settings(os.environ.get("JUDGEFLOW_SETTINGS") or settings_path)


def _utc(value: dt.datetime) -> dt.datetime:
    """A plain ``datetime`` in UTC: pendulum's loses its zone in arithmetic, which pandas refuses."""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(aware.timestamp(), tz=dt.UTC)
