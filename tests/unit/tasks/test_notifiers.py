"""The DAG's failure callback."""

from __future__ import annotations

from judgeflow.tasks.notifiers import failure_notifier


def test_failure_notifier_templates_dag_task_run_and_log() -> None:
    notifier = failure_notifier("slack_oncall")

    assert notifier.slack_webhook_conn_id == "slack_oncall"
    for field in ["{{ dag.dag_id }}", "{{ ti.task_id }}", "{{ run_id }}", "{{ ti.log_url }}"]:
        assert field in notifier.text
