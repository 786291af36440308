"""Old rubric version against new: shifts, rank correlation and movers from stored scores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from judgeflow.config import SourceConfig
from judgeflow.records import CriterionScore, ScoreRecord, Usage
from judgeflow.rubrics.versions import compare_versions, known_versions
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse

NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)


def score(response_id: int, version: str, accuracy: int, tone: int, at: dt.datetime) -> ScoreRecord:
    return ScoreRecord(
        response_id=response_id,
        rubric_name="helpfulness",
        rubric_version=version,
        overall=(accuracy + tone) / 2,
        criteria={"accuracy": CriterionScore(accuracy, "a"), "tone": CriterionScore(tone, "t")},
        model="claude-haiku-4-5",
        usage=Usage(),
        cost_usd=0.0,
        latency_ms=1,
        cache_hit=False,
        truncated=False,
        dag_run_id="run",
        scored_at=at,
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    seed_warehouse(engine, generate_responses(count=12, end=NOW))
    store = Warehouse.from_url(f"sqlite:///{tmp_path / 'w.sqlite'}", SourceConfig())
    store.ensure_schema()
    return store


def test_shift_correlation_and_movers(warehouse: Warehouse) -> None:
    # v1 scores responses 1..10; v2 rescored 1..8 (9 and 10 were never rescored: not compared).
    # v2 is stricter on accuracy by exactly one point and keeps tone, except response 3, whose
    # tone fell from 5 to 1: it must top the movers.
    old = [score(i, "1+aaa", accuracy=2 + i % 4, tone=5 if i == 3 else 1 + (i * 3) % 5, at=NOW) for i in range(1, 11)]
    new = [
        score(
            i,
            "2+bbb",
            accuracy=max(1, o.criteria["accuracy"].score - 1),
            tone=1 if i == 3 else o.criteria["tone"].score,
            at=NOW + dt.timedelta(days=1),
        )
        for i, o in zip(range(1, 9), old, strict=False)
    ]
    warehouse.write(old, [])
    warehouse.write(new, [])

    assert known_versions(warehouse, "helpfulness") == ["1+aaa", "2+bbb"]
    result = compare_versions(warehouse, "helpfulness", "1+aaa", "2+bbb", movers=2)

    by_name = {s.criterion: s for s in result.shifts}
    assert set(by_name) == {"accuracy", "tone", "overall"}
    assert all(s.n == 8 for s in by_name.values()), "only responses scored under both versions"
    old_acc = [o.criteria["accuracy"].score for o in old[:8]]
    new_acc = [n.criteria["accuracy"].score for n in new]
    assert by_name["accuracy"].shift == pytest.approx(sum(new_acc) / 8 - sum(old_acc) / 8)
    assert by_name["accuracy"].shift < 0
    assert by_name["accuracy"].spearman == pytest.approx(1.0), "stricter, but the same order"
    assert by_name["tone"].spearman is not None and by_name["tone"].spearman < 1.0
    assert result.movers[0].response_id in (3, "3") and result.movers[0].moved == pytest.approx(-2.5)
    assert "accuracy" in result.table() and "moved most" in result.table()


def test_a_constant_side_has_no_correlation_instead_of_a_made_up_one(warehouse: Warehouse) -> None:
    warehouse.write([score(i, "1+aaa", accuracy=i % 5 + 1, tone=3, at=NOW) for i in range(1, 6)], [])
    warehouse.write([score(i, "2+bbb", accuracy=4, tone=3, at=NOW) for i in range(1, 6)], [])

    result = compare_versions(warehouse, "helpfulness", "1+aaa", "2+bbb")

    assert {s.criterion: s.spearman for s in result.shifts}["accuracy"] is None
    assert {s.criterion: s.spearman for s in result.shifts}["tone"] is None
