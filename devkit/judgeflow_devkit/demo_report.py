"""What ``judgeflow-dev demo`` prints at the end: where the scores are, and what they say."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text


def print_report(engine: Engine, *, warehouse: Path, log_path: Path) -> int:
    """Print the run summary, per-topic averages and a few scored rows; 1 if nothing was scored."""
    with engine.connect() as conn:
        runs = pd.read_sql(
            text(
                "SELECT dag_run_id, rubric_version, extracted, scored, from_cache, errors, unaccounted, "
                "input_tokens, output_tokens, cost_usd FROM judge_runs ORDER BY finished_at DESC LIMIT 1"
            ),
            conn,
        )
        by_topic = pd.read_sql(
            text(
                "SELECT r.topic, COUNT(*) AS scored, ROUND(AVG(s.overall), 2) AS avg_overall "
                "FROM judge_scores s JOIN app_responses r ON r.id = s.response_id "
                "GROUP BY r.topic ORDER BY r.topic"
            ),
            conn,
        )
        sample = pd.read_sql(
            text(
                "SELECT s.response_id, r.topic, s.overall, s.cache_hit, s.model, "
                "SUBSTR(s.rationale, 1, 60) AS rationale FROM judge_scores s "
                "JOIN app_responses r ON r.id = s.response_id ORDER BY s.response_id DESC LIMIT 8"
            ),
            conn,
        )
        errors = pd.read_sql(text("SELECT response_id, kind, SUBSTR(reason, 1, 60) AS reason FROM judge_errors"), conn)
    if runs.empty or int(runs.loc[0, "scored"]) == 0:
        print(f"nothing was scored; see {log_path}")
        return 1
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print("\n== run summary (table judge_runs)")
        print(runs.to_string(index=False))
        print("\n== average overall score by topic (judge_scores joined to app_responses)")
        print(by_topic.to_string(index=False))
        print("\n== latest scores (judge_scores; per-criterion rows in judge_criterion_scores)")
        print(sample.to_string(index=False))
        print(f"\n== responses without a score (judge_errors): {len(errors)}")
        if not errors.empty:
            print(errors.to_string(index=False))
    print(f"\nscores are in {warehouse}  (sqlite3 {warehouse} 'SELECT * FROM judge_scores LIMIT 5')")
    print(f"the DAG run's log is in {log_path}")
    return 0
