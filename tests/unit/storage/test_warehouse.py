"""One staging for several rubrics: each rubric reads, and is counted for, only what it needed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine

from judgeflow.config import BatchingConfig, SourceConfig
from judgeflow.records import CriterionScore, ScoreRecord, Usage
from judgeflow.rubric import Rubric, load_rubric
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support import ROOT

END = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def score(response_id: int, rubric: Rubric, version: str, run_id: str) -> ScoreRecord:
    criteria = {name: CriterionScore(3, "ok") for name in rubric.criterion_names}
    return ScoreRecord(
        response_id,
        rubric.name,
        version,
        3.0,
        criteria,
        rubric.model,
        Usage(10, 5),
        0.001,
        5,
        False,
        False,
        run_id,
        END,
    )


def test_each_rubric_of_a_run_reads_and_counts_what_it_needed(tmp_path: Path) -> None:
    """Responses 21-30 arrived two days ago and were scored under an older version of helpfulness:
    the run stages them once because concision has never judged them, and helpfulness leaves them
    alone (re-judging the past after a rubric change is a backfill someone chose)."""
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    engine = create_engine(url)
    seed_warehouse(engine, (r for r in generate_responses(count=15, end=END, seed=3) if r["id"] > 5))
    old = generate_responses(count=10, end=END - 2 * DAY, seed=4, first_id=21)
    seed_warehouse(engine, ({**r, "response": f"answer {r['id']}"} for r in old))
    warehouse = Warehouse.from_url(url, SourceConfig())
    warehouse.ensure_schema()
    helpfulness, concision = (load_rubric(ROOT / "include" / "rubrics", n) for n in ("helpfulness", "concision"))
    warehouse.write([score(i, helpfulness, "0+older", "earlier") for i in range(21, 31)], [])

    staged = warehouse.stage_run(
        run_key="dag/run",
        rubrics=[helpfulness, concision],
        start=END - DAY,
        end=END,
        rescore=False,
        batching=BatchingConfig(batch_size=100),
    )
    (batch,) = warehouse.plan_batches("dag/run")

    def read(rubric: Rubric) -> list[int]:
        pages = warehouse.read_batch(
            batch,
            rubric_name=rubric.name,
            rubric_version=rubric.version_key,
            dag_run_id="run",
            rescore=False,
            since=END - DAY,
        )
        return sorted(item.response_id for page in pages for item in page)

    assert staged == 20, "one staging: what either rubric needs"
    assert read(helpfulness) == list(range(6, 16)), "helpfulness: the interval only"
    assert read(concision) == list(range(6, 16)) + list(range(21, 31)), "concision: the interval and the late ones"

    warehouse.write([score(i, helpfulness, helpfulness.version_key, "run") for i in range(6, 16)], [])
    lost = 30
    judged = [*range(6, 16), *range(21, lost)]
    warehouse.write([score(i, concision, concision.version_key, "run") for i in judged], [])
    totals = {
        r.name: warehouse.run_totals("dag/run", "run", r.name, r.version_key, since=END - DAY)
        for r in (helpfulness, concision)
    }

    assert (totals["helpfulness"]["extracted"], totals["helpfulness"]["unaccounted"]) == (10, 0)
    assert (totals["concision"]["extracted"], totals["concision"]["unaccounted"]) == (20, 1), "the lost one shows"
    assert totals["helpfulness"]["mean"] == 3.0
    warehouse.close()
