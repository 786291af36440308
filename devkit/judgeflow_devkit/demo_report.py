"""What ``judgeflow-dev demo`` prints at the end: per suite, where its scores are and what they say."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text

from judgeflow_devkit import PROJECT_ROOT


def print_report(engine: Engine, *, warehouse: Path, suites: Sequence[str], logs: Path) -> int:
    """Print each suite's run summary per rubric and its average score per segment; 1 if a suite
    scored nothing."""
    scored_all = True
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        for suite in suites:
            scored_all &= _print_suite(engine, warehouse, suite, logs / f"dag_test_{suite}.log")
    print(f"\nscores are in {warehouse}  (sqlite3 {warehouse} 'SELECT * FROM judge_scores LIMIT 5')")
    return 0 if scored_all else 1


def _print_suite(engine: Engine, warehouse: Path, suite: str, log_path: Path) -> bool:
    with engine.connect() as conn:
        runs = pd.read_sql(
            text(
                "SELECT rubric_name AS rubric, rubric_version, extracted AS n, sample_rate, scored, from_cache, "
                "errors, unaccounted, ROUND(cost_usd, 4) AS cost_usd, dag_run_id FROM judge_runs "
                "WHERE suite = :suite AND dag_run_id = (SELECT dag_run_id FROM judge_runs WHERE suite = :suite "
                "ORDER BY finished_at DESC LIMIT 1) ORDER BY rubric_name"
            ),
            conn,
            params={"suite": suite},
        )
    print(f"\n== suite {suite}: DAG llm_judge__{suite}, one row per rubric (judge_runs; n = responses judged)")
    if runs.empty or int(runs["scored"].sum()) == 0:
        print(f"nothing was scored; see {log_path}")
        return False
    print(runs.drop(columns="dag_run_id").to_string(index=False))
    for rubric, version in zip(runs["rubric"], runs["rubric_version"], strict=True):
        by_segment = _by_segment(warehouse, suite, str(rubric), str(version))
        if by_segment is not None:
            print(f"\n   {suite} / {rubric}: average overall score by {by_segment.index.name} (n scores, mean)")
            print(by_segment.to_string())
    print(f"\n   the DAG run's log: {log_path}")
    return True


def _by_segment(warehouse: Path, suite: str, rubric_name: str, version: str) -> pd.DataFrame | None:
    """The suite's scores of the last 8 days by its first segment column, read the way
    ``compare_scores`` reads them (so a query source works as well as a table)."""
    from judgeflow.rubric import load_rubric
    from judgeflow.storage.warehouse import Warehouse
    from judgeflow.suite import load_suite

    settings = load_suite(PROJECT_ROOT / "include" / "suites" / f"{suite}.yaml").settings
    rubric = load_rubric(settings.rubric_dir, rubric_name)
    source = Warehouse.from_url(f"sqlite:///{warehouse}", settings.source)
    try:
        segments = source.segment_names()
        end = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        frame = source.scores_frame(
            rubric_name=rubric_name,
            rubric_version=version,
            criteria=rubric.criterion_names,
            start=end - dt.timedelta(days=10),
            end=end,
        )
    finally:
        source.close()
    if not segments or frame.empty:
        return None
    table = frame.groupby(segments[0])["overall"].agg(n="count", mean="mean").round(2)
    return table
