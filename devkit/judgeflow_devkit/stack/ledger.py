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

from judgeflow_devkit.sample_data import (
    AWKWARD_RESPONSES,
    generate_responses,
    generate_search_events,
    seed_search_events,
    seed_warehouse,
)

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


def seed_search(engine: Engine, *, count: int, start: dt.datetime, end: dt.datetime, first_id: int, seed: int) -> int:
    """``count`` search assistant answers (JSON events, with click events between them the suite's
    query leaves out) spread over [start, end), each with a ticket number; returns how many answers."""
    span_days = (end - start) / DAY
    rows = generate_search_events(count=count + AWKWARD_ROWS, end=end, days=1, seed=seed, first_id=first_id)
    kept = []
    for row in rows:
        if row["kind"] == "answer" and row["id"] < first_id + AWKWARD_ROWS:
            continue
        at = end - (end - row["logged_at"]) * span_days  # squeezed into [start, end)
        payload = {**row["payload"], "query": f"{row['payload']['query']} (ticket {row['id']})"}
        kept.append({**row, "logged_at": at, "payload": payload})
    return seed_search_events(engine, iter(kept))


@dataclass(frozen=True)
class SuiteCount:
    """What one run of a sampled, several-rubric suite staged, and what each rubric made of it."""

    staged: int
    population: int
    scored: dict[str, int]  # rubric -> staged responses with a score from this run
    errors: dict[str, int]  # rubric -> staged responses with an error row
    stray: int  # scores of this run for responses it did not stage

    def judged_once_each(self, rubrics: Sequence[str]) -> bool:
        return (
            self.staged > 0
            and all(self.scored.get(r) == self.staged and not self.errors.get(r) for r in rubrics)
            and self.stray == 0
        )


def count_suite_run(engine: Engine, *, run_key: str, run_id: str, rubrics: Sequence[str], answers: str) -> SuiteCount:
    """Per rubric, the staged responses of ``run_key`` scored by ``run_id``; ``answers`` is the
    suite's source query (its population is every answer it gives)."""
    staged_ids = "SELECT response_id FROM judge_run_items WHERE run_key = :key"
    with engine.connect() as conn:
        staged = conn.execute(text(f"SELECT COUNT(*) FROM ({staged_ids}) s"), {"key": run_key}).scalar_one()
        population = conn.execute(text(f"SELECT COUNT(*) FROM ({answers}) a")).scalar_one()
        scored, errors = {}, {}
        for rubric in rubrics:
            params = {"key": run_key, "run": run_id, "rubric": rubric}
            scored[rubric] = int(
                conn.execute(
                    text(
                        f"SELECT COUNT(*) FROM judge_scores WHERE rubric_name = :rubric AND dag_run_id = :run "
                        f"AND response_id IN ({staged_ids})"
                    ),
                    params,
                ).scalar_one()
            )
            errors[rubric] = int(
                conn.execute(
                    text(
                        "SELECT COUNT(*) FROM judge_errors WHERE rubric_name = :rubric "
                        f"AND response_id IN ({staged_ids})"
                    ),
                    params,
                ).scalar_one()
            )
        stray = conn.execute(
            text(
                f"SELECT COUNT(*) FROM judge_scores WHERE dag_run_id = :run AND rubric_name IN :rubrics "
                f"AND response_id NOT IN ({staged_ids})"
            ).bindparams(bindparam("rubrics", expanding=True)),
            {"key": run_key, "run": run_id, "rubrics": list(rubrics)},
        ).scalar_one()
    return SuiteCount(int(staged), int(population), scored, errors, int(stray))


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


def batch_requests(engine: Engine, dag_id: str, run_ids: Sequence[str]) -> int:
    """Requests these runs of ``dag_id`` (of one rubric) sent as Message Batches (``judge_message_batches``)."""
    keys = [f"{dag_id}/{run_id}" for run_id in run_ids]
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
