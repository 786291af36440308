"""Calibrations in the warehouse: ``judge_calibrations`` (per criterion) and ``judge_calibration_runs``.

Kept apart from :class:`judgeflow.storage.warehouse.Warehouse` because calibration needs no source table:
``judgeflow calibrate`` works on a warehouse that has never seen an application response.
Calibrations are only ever appended; the history is what drift is measured against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, MetaData, and_, func, insert, select

from judgeflow.storage import migrate
from judgeflow.storage.dialects import NO_AUTOINCREMENT
from judgeflow.storage.engine import as_utc, errors_as, warehouse_engine
from judgeflow.storage.schema import calibration_tables

if TYPE_CHECKING:  # the rubric lifecycle computes calibrations; this module only stores them
    from judgeflow.rubrics.calibration import Calibration


@dataclass(frozen=True, slots=True)
class StoredRun:
    """A calibration run as stored: enough to decide whether to calibrate again."""

    id: int
    calibrated_at: dt.datetime
    passed: bool
    reason: str


class CalibrationStore:
    """Reads and appends calibrations of one warehouse."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.metadata = MetaData()
        self.calibrations, self.runs = calibration_tables(self.metadata)

    @classmethod
    def from_url(cls, url: str | Engine) -> CalibrationStore:
        return cls(warehouse_engine(url))

    def ensure_schema(self) -> None:
        """Upgrade a SQLite warehouse (judgeflow's own file); check any other (see :mod:`judgeflow.storage.migrate`)."""
        if self.engine.dialect.name == "sqlite":
            migrate.upgrade(self.engine, id_type=None)
        else:
            migrate.check(self.engine)

    def close(self) -> None:
        """Dispose of the engine's connection pool (when the store opened it)."""
        self.engine.dispose()

    def record(self, calibration: Calibration) -> int:
        """Append the run and its per-criterion rows in one transaction; returns the run's id."""
        c = calibration
        run_row = {
            "rubric_name": c.rubric_name,
            "rubric_version": c.rubric_version,
            "model": c.model,
            "golden_set": c.golden_set,
            "items": c.items,
            "judged": c.judged,
            "canaries_total": len(c.canaries),
            "canaries_failed": len(c.canaries_failed),
            "length_spearman": c.length_spearman,
            "human_length_spearman": c.human_length_spearman,
            "cost_usd": c.cost_usd,
            "passed": c.passed,
            "reason": c.reason,
            "calibrated_at": c.calibrated_at,
            "judge_endpoint": c.endpoint,
        }
        with errors_as("record a calibration"), self.engine.begin() as conn:
            if conn.dialect.name in NO_AUTOINCREMENT:  # no SERIAL/IDENTITY: number the run here
                run_row["id"] = int(conn.execute(select(func.coalesce(func.max(self.runs.c.id), 0))).scalar_one()) + 1
                row_id = int(conn.execute(select(func.coalesce(func.max(self.calibrations.c.id), 0))).scalar_one())
            key = conn.execute(insert(self.runs).values(run_row)).inserted_primary_key
            assert key is not None, "an insert returns its primary key"
            run_id = int(key[0])
            rows = [_criterion_row(c, r, run_id) for r in c.criteria]
            if conn.dialect.name in NO_AUTOINCREMENT:
                for offset, row in enumerate(rows, start=1):
                    row["id"] = row_id + offset
            conn.execute(insert(self.calibrations), rows)
        return run_id

    def latest_run(
        self, *, rubric_name: str, rubric_version: str, model: str, golden_set: str, endpoint: str
    ) -> StoredRun | None:
        """The newest calibration of this rubric version and model against this golden set, judged at
        ``endpoint``: one judged by another endpoint (the local emulator, a gateway) never counts."""
        runs = self.runs
        query = (
            select(runs.c.id, runs.c.calibrated_at, runs.c.passed, runs.c.reason)
            .where(_same(runs, rubric_name, rubric_version, model, golden_set), runs.c.judge_endpoint == endpoint)
            .order_by(runs.c.calibrated_at.desc(), runs.c.id.desc())
            .limit(1)
        )
        with errors_as("read the latest calibration"), self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredRun(int(row.id), as_utc(row.calibrated_at), bool(row.passed), str(row.reason))

    def first_kappas(
        self, *, rubric_name: str, rubric_version: str, model: str, golden_set: str, endpoint: str
    ) -> tuple[dt.datetime, dict[str, float | None]] | None:
        """The first calibration's kappa per criterion at ``endpoint``: what drift is measured from."""
        runs, table = self.runs, self.calibrations
        same = and_(_same(runs, rubric_name, rubric_version, model, golden_set), runs.c.judge_endpoint == endpoint)
        first = select(runs.c.id, runs.c.calibrated_at).where(same).order_by(runs.c.calibrated_at, runs.c.id).limit(1)
        with errors_as("read the first calibration"), self.engine.connect() as conn:
            row = conn.execute(first).first()
            if row is None:
                return None
            rows = conn.execute(select(table.c.criterion, table.c.kappa).where(table.c.run_id == row.id))
            return as_utc(row.calibrated_at), {r.criterion: r.kappa for r in rows}

    def criterion_rows(self, run_id: int) -> list[dict[str, Any]]:
        with errors_as("read calibration rows"), self.engine.connect() as conn:
            rows = conn.execute(select(self.calibrations).where(self.calibrations.c.run_id == run_id))
            return [dict(r._mapping) for r in rows]


def _same(table: Any, rubric_name: str, rubric_version: str, model: str, golden_set: str) -> Any:
    return and_(
        table.c.rubric_name == rubric_name,
        table.c.rubric_version == rubric_version,
        table.c.model == model,
        table.c.golden_set == golden_set,
    )


def _criterion_row(c: Calibration, result: Any, run_id: int) -> dict[str, Any]:
    a = result.agreement
    row: dict[str, Any] = {
        "rubric_name": c.rubric_name,
        "rubric_version": c.rubric_version,
        "model": c.model,
        "criterion": result.criterion,
        "golden_set": c.golden_set,
        "n": a.n,
        "passed": result.passed,
        "calibrated_at": c.calibrated_at,
        "run_id": run_id,
    }
    for name in ("kappa", "spearman", "mae"):
        estimate = getattr(a, name)
        row.update({name: estimate.value, f"{name}_low": estimate.low, f"{name}_high": estimate.high})
    return row
