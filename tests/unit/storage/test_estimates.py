"""The staged work list measured in SQL: what the estimate prices is what the engine would send."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine

from judgeflow.config import Settings
from judgeflow.rubric import load_rubric
from judgeflow.storage.estimates import staged_sizes
from judgeflow.storage.warehouse import Warehouse
from judgeflow_devkit.sample_data import generate_responses, seed_warehouse
from tests.support import ROOT

RUBRIC = load_rubric(ROOT / "include" / "rubrics", "helpfulness")


def test_staged_sizes_measure_what_the_engine_would_send(tmp_path: Path) -> None:
    """NULL, empty and whitespace-only responses are not judged, duplicates once, long ones truncated."""
    end = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    rows = list(generate_responses(count=40, end=end, seed=5))
    rows.append({**rows[-1], "id": 41, "response": " \n\t "})
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    engine = create_engine(url)
    seed_warehouse(engine, rows)
    settings = Settings(judge={"max_response_chars": 500})
    warehouse = Warehouse.from_url(url, settings.source)
    warehouse.ensure_schema()
    warehouse.stage_run(
        run_key="r",
        rubrics=[RUBRIC],
        start=end - dt.timedelta(days=1),
        end=end,
        rescore=True,
        limit=None,
        batching=settings.batching,
    )

    sizes = staged_sizes(warehouse, "r", max_response_chars=500)

    judged = [r for r in rows if r["response"] is not None and r["response"].strip()]
    assert len(judged) < len(rows) - 2, "the sample has a NULL, an empty and a blank response"
    assert (sizes.responses, sizes.judgeable) == (len(rows), len(judged))
    assert sizes.distinct_inputs == len({(r["question"], r["context"], r["response"]) for r in judged})
    assert any(len(r["response"]) > 500 for r in judged), "and one over the limit"
    chars = sum(len(r["question"] or "") + len(r["context"] or "") + min(len(r["response"]), 500) for r in judged)
    assert sizes.text_chars == chars
    warehouse.engine.dispose()
    engine.dispose()
