"""The stack run's data: which days it seeds, and what the warehouse says was scored per day.

Every seeded day is one calendar day of generated responses (without the generator's five awkward
rows, so each one should end with a score), each text made unique with a ticket number so that
every response costs one request and the throughput figures are not cache hits. Some days are
judged, some are decoys that no run may touch: a run that judged a day it should not have shows up
as scores on a decoy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, bindparam, inspect, text

from judgeflow_devkit.sample_data import AWKWARD_RESPONSES, generate_responses, seed_warehouse

DAY = dt.timedelta(days=1)
AWKWARD_ROWS = len(AWKWARD_RESPONSES)  # generate_responses' first rows: NULL, empty, oversized… (not all scored)


@dataclass(frozen=True)
class DayCount:
    """What the warehouse holds for one day's responses."""

    day: dt.date
    responses: int
    scored: int
    scored_twice: int  # responses with more than one score row
    errors: int
    score_run_ids: tuple[str, ...]  # the DAG runs whose rows these scores are

    @property
    def scored_once_each(self) -> bool:
        return self.responses > 0 and self.scored == self.responses and self.scored_twice == 0 and self.errors == 0


def seed_days(engine: Engine, days: Sequence[dt.date], *, per_day: int, first_id: int, seed: int) -> int:
    """``per_day`` responses on each of ``days``; ids from ``first_id`` up; returns how many."""
    inserted = 0
    next_id = first_id
    for offset, day in enumerate(days):
        end = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + DAY
        rows = generate_responses(count=per_day + AWKWARD_ROWS, end=end, days=1, seed=seed + offset, first_id=next_id)
        kept = (row for row in rows if row["id"] >= next_id + AWKWARD_ROWS)
        inserted += seed_warehouse(
            engine, ({**row, "question": f"{row['question']} (ticket {row['id']})"} for row in kept)
        )
        next_id += per_day + AWKWARD_ROWS
    return inserted


def count_day(engine: Engine, day: dt.date) -> DayCount:
    """Responses created on ``day`` and their scores and errors, under any rubric version."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    window = {"start": start, "end": start + DAY}
    in_day = "SELECT id FROM app_responses WHERE created_at >= :start AND created_at < :end"
    with engine.connect() as conn:
        responses = conn.execute(text(f"SELECT COUNT(*) FROM ({in_day}) d"), window).scalar_one()
        if not _table_exists(conn, "judge_scores"):
            return DayCount(day, int(responses), 0, 0, 0, ())
        per_response = conn.execute(
            text(
                f"SELECT COUNT(DISTINCT response_id), COUNT(*) - COUNT(DISTINCT response_id) "
                f"FROM judge_scores WHERE response_id IN ({in_day})"
            ),
            window,
        ).one()
        errors = conn.execute(
            text(f"SELECT COUNT(*) FROM judge_errors WHERE response_id IN ({in_day})"), window
        ).scalar_one()
        run_ids = conn.execute(
            text(f"SELECT DISTINCT dag_run_id FROM judge_scores WHERE response_id IN ({in_day}) ORDER BY 1"),
            window,
        ).scalars()
        return DayCount(day, int(responses), int(per_response[0]), int(per_response[1]), int(errors), tuple(run_ids))


def batch_sizes(engine: Engine, run_key: str) -> list[int]:
    """Responses per batch of a run, in batch order (= map index order of its score tasks)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT batch_index, COUNT(*) FROM judge_run_items WHERE run_key = :run_key "
                "GROUP BY batch_index ORDER BY batch_index"
            ),
            {"run_key": run_key},
        ).all()
    return [int(count) for _, count in rows]


def judged_without_cache(engine: Engine, run_ids: Sequence[str]) -> int:
    """Scores these runs wrote that did not come from a cache: each should be one request to the API."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT COUNT(*) FROM judge_scores WHERE NOT cache_hit AND dag_run_id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": list(run_ids)},
            ).scalar_one()
        )


def batch_requests(engine: Engine, run_ids: Sequence[str]) -> int:
    """Requests these runs sent as Message Batches (``judge_message_batches``)."""
    keys = [f"llm_judge_daily/{run_id}" for run_id in run_ids]
    with engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT COALESCE(SUM(requests), 0) FROM judge_message_batches WHERE run_key IN :keys").bindparams(
                    bindparam("keys", expanding=True)
                ),
                {"keys": keys},
            ).scalar_one()
        )


def _table_exists(conn: Connection, name: str) -> bool:
    return bool(inspect(conn).has_table(name))
