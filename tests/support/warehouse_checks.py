"""Read back what a run left in the warehouse, for assertions (plain SQL over judgeflow's tables)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text


def outcome_counts(engine: Engine, run_id: str) -> dict[str, int]:
    """For the run's staged responses: how many have a score, an error, both or neither."""
    query = text(
        """
        SELECT
          COUNT(*) AS staged,
          SUM(CASE WHEN s.response_id IS NOT NULL THEN 1 ELSE 0 END) AS scored,
          SUM(CASE WHEN e.response_id IS NOT NULL THEN 1 ELSE 0 END) AS errored,
          SUM(CASE WHEN s.response_id IS NOT NULL AND e.response_id IS NOT NULL THEN 1 ELSE 0 END) AS both_kinds,
          SUM(CASE WHEN s.response_id IS NULL AND e.response_id IS NULL THEN 1 ELSE 0 END) AS neither
        FROM judge_run_items i
        LEFT JOIN judge_scores s ON s.response_id = i.response_id
        LEFT JOIN judge_errors e ON e.response_id = i.response_id
        WHERE i.run_key = :run_key
        """
    )
    with engine.connect() as conn:
        row = conn.execute(query, {"run_key": f"llm_judge_daily/{run_id}"}).one()._asdict()
    row["both"] = row.pop("both_kinds")  # BOTH is a reserved word in MySQL
    return {k: int(v or 0) for k, v in row.items()}


def run_row(engine: Engine, run_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM judge_runs WHERE dag_run_id = :run_id"), {"run_id": run_id}).one()
    return row._asdict()


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())
