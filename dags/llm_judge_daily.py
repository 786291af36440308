"""
### llm_judge: score an LLM feature's responses with a Claude judge, one DAG per suite

Extracts the suite's unscored responses for the data interval (plus older ones still unscored for
the active rubric versions), keeps the suite's deterministic sample, judges them under each of the
suite's rubrics in mapped batches at the API's rate limit, upserts the scores into `judge_scores`,
records the run per rubric in `judge_runs`, compares the interval with the week before and tells
the suite's on-call channel in Slack when quality drops. The suite's scores Asset gets an event.

**Suites:** `include/suites/<name>.yaml` over the shared `include/judgeflow.yaml` make the DAGs
`llm_judge__<name>`; a deployment with `include/judgeflow.yaml` alone has one DAG, `llm_judge_daily`.
A suite file that cannot load is an import error of `dags/llm_judge_suite_check.py`.
**Connections:** `anthropic_default`, the suite's warehouse (`judge_warehouse`), `judge_cache`
(optional), the suite's Slack (`slack_oncall`, optional).

**Pool:** `score_batch` runs in the `judge_api` pool, which must exist
(`airflow pools set judge_api 8 "judgeflow score tasks"`); score tasks that stay *scheduled*
and never start mean the pool is missing.

**Deadline:** a run not finished 6 hours after it was queued (06:00 UTC for the daily run)
alerts the suite's Slack; `JUDGEFLOW_RUN_DEADLINE_HOURS` changes the hours or turns it `off`.

**Calibration:** `calibrate_rubric` checks the judge against each rubric's human golden set
(`include/golden/<rubric>.jsonl`) when the rubric version is new or its calibration is older than
`calibration.every_days`; below the floor, or a prompt-injection canary scored high, it fails and
nothing of the run is scored (the log names rubric, criterion, figure, value and floor). A judge
whose agreement drifted alerts the suite's Slack and scoring goes on. `judgeflow calibrate` prints
the table.

**Triage:** a failed `score_batch` is safe to clear: it skips what is already scored.
Responses that could not be scored are in `judge_errors` with the reason, and the next run
picks up the retryable ones. A terminal API error (bad key, billing) fails without retries.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from judgeflow.tasks import pipeline
from judgeflow.tasks.deadline import run_deadline_alert
from judgeflow.tasks.notifiers import failure_notifier
from judgeflow.tasks.operators import ScoreBatchOperator
from judgeflow.tasks.suites import Suite, include_dir, schedule_of, scores_asset, suite_doc, suites

JUDGE_POOL = "judge_api"  # caps score tasks running at once: `airflow pools set judge_api 8 "judgeflow"`


def judge_suite(suite: Suite) -> None:
    """The DAG of one suite: its file travels with every task as an argument."""
    path, on_call = str(suite.path), suite.settings.connections.slack

    @dag(
        dag_id=suite.dag_id,
        schedule=schedule_of(suite),
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        doc_md=f"{__doc__}\n{suite_doc(suite)}",
        tags=["judgeflow", "llm-eval", f"suite:{suite.name}", *suite.settings.tags],
        deadline=run_deadline_alert(on_call, hours=6),
        default_args={
            "owner": suite.settings.owner,
            "retries": 2,
            "retry_delay": pendulum.duration(minutes=2),
            "retry_exponential_backoff": True,
            "on_failure_callback": failure_notifier(on_call),
        },
        params={
            "rubric": Param(None, type=["null", "string"], description="one rubric file name; default: the suite's"),
            "limit": Param(None, type=["null", "integer"], minimum=1, description="judge at most this many"),
            "rescore": Param(False, type="boolean", description="judge the interval again under the rubrics"),
            "mode": Param(
                None,
                type=["null", "string"],
                enum=[None, "realtime", "batch"],
                description="realtime, or Message Batches at half the price; default from settings",
            ),
            "dry_run": Param(False, type="boolean", description="log what judging would cost, judge nothing"),
            "backfill_from": Param(None, type=["null", "string"], description="a backfill's first day, YYYY-MM-DD"),
            "backfill_until": Param(
                None, type=["null", "string"], description="a backfill's last day: its run sends one digest"
            ),
        },
    )
    def llm_judge() -> None:
        @task
        def calibrate_rubric() -> dict:
            return pipeline.calibrate_rubric(path, get_current_context())

        @task
        def extract_responses() -> list[dict]:
            return pipeline.extract_responses(path, get_current_context())

        @task(trigger_rule="none_failed", outlets=[scores_asset(suite)])  # also runs when nothing was scored
        def summarize_run(batch_results: list[dict]) -> dict:
            return pipeline.summarize_run(path, list(batch_results), get_current_context())

        @task
        def compare_scores() -> dict:
            return pipeline.compare_scores(path, get_current_context())

        @task
        def alert_on_call(summary: dict, comparison: dict) -> dict:
            return pipeline.alert_on_call(path, summary, comparison, get_current_context())

        batches = extract_responses()
        calibrate_rubric() >> batches
        score_batch = ScoreBatchOperator.partial(
            task_id="score_batch", suite=path, pool=JUDGE_POOL, map_index_template="{{ batch_label }}"
        ).expand(batch=batches)
        summary = summarize_run(score_batch.output)
        comparison = compare_scores()
        summary >> comparison
        alert_on_call(summary, comparison)

    llm_judge()


for _suite in suites(include_dir(__file__)):
    judge_suite(_suite)
