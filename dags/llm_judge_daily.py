"""
### llm_judge_daily: score yesterday's LLM responses with a Claude judge

Extracts the application's unscored responses for the data interval (plus older ones still
unscored for the active rubric version), judges them in mapped batches at the API's rate limit,
upserts the scores into `judge_scores`, records the run in `judge_runs`, compares the interval
with the week before and tells on-call in Slack when quality drops.

**Owner:** data platform. **Connections:** `anthropic_default`, `judge_warehouse`,
`judge_cache` (optional), `slack_oncall` (optional). **Settings:** `include/judgeflow.yaml`.

**Pool:** `score_batch` runs in the `judge_api` pool, which must exist
(`airflow pools set judge_api 8 "judgeflow score tasks"`); score tasks that stay *scheduled*
and never start mean the pool is missing.

**Deadline:** a run not finished 6 hours after it was queued (06:00 UTC for the daily run)
alerts `slack_oncall`; `JUDGEFLOW_RUN_DEADLINE_HOURS` changes the hours or turns it `off`.

**Calibration:** `calibrate_rubric` checks the judge against the rubric's human golden set
(`include/golden/<rubric>.jsonl`) when the rubric version is new or its calibration is older than
`calibration.every_days`; below the floor, or a prompt-injection canary scored high, it fails and
nothing is scored under that version (the log names criterion, figure, value and floor). A judge
whose agreement drifted alerts `slack_oncall` and scoring goes on. `judgeflow calibrate` prints
the table.

**Triage:** a failed `score_batch` is safe to clear: it skips what is already scored.
Responses that could not be scored are in `judge_errors` with the reason, and the next run
picks up the retryable ones. A terminal API error (bad key, billing) fails without retries.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from judgeflow.tasks import pipeline
from judgeflow.tasks.deadline import run_deadline_alert
from judgeflow.tasks.notifiers import failure_notifier
from judgeflow.tasks.operators import ScoreBatchOperator

SETTINGS = str(Path(__file__).resolve().parents[1] / "include" / "judgeflow.yaml")
JUDGE_POOL = "judge_api"  # caps score tasks running at once: `airflow pools set judge_api 8 "judgeflow"`
ON_CALL = "slack_oncall"


@dag(
    dag_id="llm_judge_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["judgeflow", "llm-eval"],
    deadline=run_deadline_alert(ON_CALL, hours=6),
    default_args={
        "owner": "data-platform",
        "retries": 2,
        "retry_delay": pendulum.duration(minutes=2),
        "retry_exponential_backoff": True,
        "on_failure_callback": failure_notifier(ON_CALL),
    },
    params={
        "rubric": Param(None, type=["null", "string"], description="rubric file name; default from settings"),
        "limit": Param(None, type=["null", "integer"], minimum=1, description="judge at most this many"),
        "rescore": Param(False, type="boolean", description="judge the interval again under this rubric"),
        "mode": Param(
            None,
            type=["null", "string"],
            enum=[None, "realtime", "batch"],
            description="realtime, or Message Batches at half the price; default from settings",
        ),
        "dry_run": Param(False, type="boolean", description="log what judging would cost, judge nothing"),
    },
)
def llm_judge_daily() -> None:
    @task
    def calibrate_rubric() -> dict:
        return pipeline.calibrate_rubric(SETTINGS, get_current_context())

    @task
    def extract_responses() -> list[dict]:
        return pipeline.extract_responses(SETTINGS, get_current_context())

    @task(trigger_rule="none_failed")  # also runs when there was nothing to score
    def summarize_run(batch_results: list[dict]) -> dict:
        return pipeline.summarize_run(SETTINGS, list(batch_results), get_current_context())

    @task
    def compare_scores() -> dict:
        return pipeline.compare_scores(SETTINGS, get_current_context())

    @task
    def alert_on_call(summary: dict, comparison: dict) -> dict:
        return pipeline.alert_on_call(SETTINGS, summary, comparison, get_current_context())

    batches = extract_responses()
    calibrate_rubric() >> batches
    score_batch = ScoreBatchOperator.partial(
        task_id="score_batch", settings_path=SETTINGS, pool=JUDGE_POOL, map_index_template="{{ batch_label }}"
    ).expand(batch=batches)
    summary = summarize_run(score_batch.output)
    comparison = compare_scores()
    summary >> comparison
    alert_on_call(summary, comparison)


llm_judge_daily()
