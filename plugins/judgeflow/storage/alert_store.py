"""``judge_comparisons`` and ``judge_alert_state``: what each run compared, and what on-call knows.

The decisions live in :mod:`judgeflow.quality` (pure); this module only reads and writes their rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table, delete, select

from judgeflow.quality.alert_state import OpenRegression
from judgeflow.storage.engine import as_utc, errors_as


class AlertStore:
    """Reads and writes the comparison rows and the alert state over the warehouse's engine."""

    def __init__(self, engine: Engine, comparisons: Table, alert_state: Table) -> None:
        self.engine = engine
        self.comparisons = comparisons
        self.alert_state = alert_state

    def record_comparisons(
        self, *, run_key: str, rubric_name: str, rubric_version: str, rows: list[dict[str, Any]]
    ) -> None:
        """Replace the run's comparison rows (a rerun of the step writes them again, not twice)."""
        table = self.comparisons
        stored = [
            {
                "run_key": run_key,
                "rubric_name": rubric_name,
                "rubric_version": rubric_version,
                "metric": row["metric"],
                "segment": row.get("segment") or "",
                "status": str(row["status"]),
                "baseline_n": int(row["baseline_n"]),
                "current_n": int(row["current_n"]),
                "difference": row.get("difference"),
                "p_value": row.get("p_value"),
                "details": row,
            }
            for row in rows
        ]
        with errors_as("record comparisons"), self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.run_key == run_key))
            if stored:
                conn.execute(table.insert(), stored)

    def open_regressions(self, rubric_name: str, rubric_version: str) -> dict[str, OpenRegression]:
        table = self.alert_state
        query = select(table).where(table.c.rubric_name == rubric_name, table.c.rubric_version == rubric_version)
        with errors_as("read alert state"), self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return {
            row["regression"]: OpenRegression(row["regression"], float(row["difference"]), as_utc(row["opened_at"]))
            for row in rows
        }

    def save_open_regressions(self, rubric_name: str, rubric_version: str, open_now: dict[str, OpenRegression]) -> None:
        """Store what on-call now knows; called only after the alert reached Slack."""
        table = self.alert_state
        rows = [
            {
                "rubric_name": rubric_name,
                "rubric_version": rubric_version,
                "regression": item.key,
                "difference": item.difference,
                "opened_at": item.opened_at,
            }
            for item in open_now.values()
        ]
        with errors_as("save alert state"), self.engine.begin() as conn:
            conn.execute(
                delete(table).where(table.c.rubric_name == rubric_name, table.c.rubric_version == rubric_version)
            )
            if rows:
                conn.execute(table.insert(), rows)
