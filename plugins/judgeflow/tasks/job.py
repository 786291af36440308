"""What one task of one run works with, opened once when the task starts and closed when it ends.

A task turns its Airflow context and its suite file into typed objects here, once: the run
(:class:`RunContext`), the suite and its settings, the run's rubrics, the warehouse (one engine,
the source reflected once) and, when it judges, the verdict cache. The suite file is the task's
own argument (the DAG factory gives it), never the process's environment, so suites with different
warehouses, rubrics and on-call channels run side by side on the same workers.
:meth:`Job.close` disposes of the engine's connection pool and closes the cache, so a worker that
runs thousands of tasks does not keep a pool per task it ever ran. Below this module nothing reads
the Airflow context or the environment.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from judgeflow.config import RunParams, parse_run_params
from judgeflow.connections import warehouse_target
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.storage.sampling import SampleRule
from judgeflow.storage.warehouse import Warehouse
from judgeflow.suite import Suite, load_suite

if TYPE_CHECKING:
    from judgeflow.judging.budget import Cap
    from judgeflow.judging.verdict_cache import VerdictCache
    from judgeflow.storage.judge_quality import JudgeQualityStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a task needs to know about its DAG run, read once from the Airflow context."""

    dag_id: str
    run_id: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    params: RunParams
    run_type: str = "manual"
    """``scheduled``, ``manual``, ``backfill`` or ``asset_triggered`` (Airflow's ``DagRunType`` value)."""

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
            run_type=_run_type(getattr(dag_run, "run_type", None)),
        )


class Job:
    """Suite, settings, the run's rubrics and the warehouse for one task of one run; a context
    manager that closes them."""

    def __init__(self, run: RunContext, suite: Suite, rubrics: tuple[Rubric, ...], warehouse: Warehouse) -> None:
        self.run = run
        self.suite = suite
        self.settings = suite.settings
        self.rubrics = rubrics
        self.warehouse = warehouse
        self._cache: VerdictCache | None = None

    @property
    def run_rubrics(self) -> tuple[str, ...]:
        """The names of every rubric this run judges under (a score task loads only its own)."""
        return (self.run.params.rubric,) if self.run.params.rubric else self.settings.rubric_names

    @classmethod
    def open(cls, suite_path: str, context: Any, *, rubric: str | None = None) -> Job:
        """Read the context, the suite and its rubrics and connect to the warehouse: once per task.

        The run's rubrics are the ``rubric`` param, else the suite's; a score task passes the one
        ``rubric`` it judges under."""
        run = RunContext.from_airflow(context)
        suite = load_suite(suite_path)
        settings = suite.settings
        names = (rubric,) if rubric else ((run.params.rubric,) if run.params.rubric else settings.rubric_names)
        rubrics = tuple(load_rubric(settings.rubric_dir, name) for name in names)
        target = warehouse_target(settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path)
        return cls(run, suite, rubrics, Warehouse.from_url(target, settings.source))

    @property
    def rubric(self) -> Rubric:
        """The rubric of a task that judges under one (a score task, or a run of one rubric)."""
        if len(self.rubrics) != 1:
            raise ValueError(f"this task's job holds {len(self.rubrics)} rubrics; name one")
        return self.rubrics[0]

    def result_key(self, rubric: Rubric) -> str:
        """Where one rubric's results of this run are keyed (``judge_runs``, ``judge_comparisons``,
        ``judge_message_batches``, the report): the run key (``<dag_id>/<run_id>``), as before
        suites, when the run judges one rubric; ``<run key>/<rubric>`` when it judges several."""
        return self.run.run_key if len(self.run_rubrics) == 1 else f"{self.run.run_key}/{rubric.name}"

    @property
    def sample(self) -> SampleRule:
        """The suite's sampling rule; its salt defaults to the suite's name."""
        sampling = self.settings.sampling
        return SampleRule(sampling, salt=sampling.salt or self.suite.name)

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

    @property
    def judge_quality(self) -> JudgeQualityStore:
        """The judge-noise and review tables, on the warehouse's engine."""
        from judgeflow.storage.judge_quality import JudgeQualityStore

        return JudgeQualityStore(self.warehouse, unstable_spread=self.settings.noise.unstable_spread)

    def budget_caps(self, *, now: dt.datetime | None = None) -> list[Cap]:
        """The run and day caps, seeded with what the warehouse says this run and this suite's day
        already spent (scores and the noise sample's second asks), so every task (and every retry,
        realtime or after a Message Batch, under every rubric of the run) counts against them. The day
        cap is the suite's: keyed by its DAG."""
        from judgeflow.judging.budget import budget_caps

        today = (now or dt.datetime.now(dt.UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
        rubric_names = sorted({*self.settings.rubric_names, *self.run_rubrics})
        spent: dict[str, Any] = {
            "dag_run_id": self.run.run_id,
            "day_start": today,
            "day_end": today + dt.timedelta(days=1),
            "rubric_names": rubric_names,
        }
        run_spent, day_spent = self.warehouse.spent_usd(**spent)
        noise_run, noise_day = self.judge_quality.noise_spent(**spent)  # the noise sample's second asks
        run_spent, day_spent = run_spent + noise_run, day_spent + noise_day
        return budget_caps(
            self.settings.budget,
            run_key=self.run.run_key,
            day=f"{self.run.dag_id}:{today:%Y-%m-%d}",
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


def _utc(value: dt.datetime) -> dt.datetime:
    """A plain ``datetime`` in UTC: pendulum's loses its zone in arithmetic, which pandas refuses."""
    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(aware.timestamp(), tz=dt.UTC)


def _run_type(value: Any) -> str:
    """Airflow's ``DagRunType`` as its value (``backfill``, ``manual``, ...); a context without one is manual."""
    return str(getattr(value, "value", value) or "manual")
