"""The DAG's failure callback: on-call hears which task of which run failed, with its log.

Quality alerts are :mod:`judgeflow.quality.alerts` (sent by the ``alert_on_call`` task); this is the
notifier Airflow itself calls when a task fails, through the Slack provider's own notifier.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

FAILURE_TEXT = (
    ":red_circle: judgeflow task failed: dag {{ dag.dag_id }}, task {{ ti.task_id }}, "
    "run {{ run_id }}\nLog: {{ ti.log_url }}"
)
"""Jinja template rendered by Airflow with the failed task's context."""


def failure_notifier(conn_id: str) -> SlackWebhookNotifier:
    """A DAG ``on_failure_callback`` posting the failed dag, task, run and log URL to ``conn_id``."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    return SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=FAILURE_TEXT)
