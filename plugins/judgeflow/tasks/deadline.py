"""The DAG's deadline: on-call hears when a daily run has not finished in time.

Airflow's Deadline Alerts do the watching, so nothing of ours has to be running for the alert to
go out: the scheduler stores each run's deadline when the run is queued, and when it passes with
the run unfinished the triggerer posts to Slack through the provider's own notifier.

The deadline counts from when the run was *queued*, not from its logical date: the daily run is
queued at midnight UTC, so 6 hours means "not finished by 06:00 UTC", while a backfill of last
month's days (whose logical dates are long past) still gets its full 6 hours instead of alerting at
once.

``JUDGEFLOW_RUN_DEADLINE_HOURS`` in the DAG processor's environment overrides the hours, and
``off`` leaves the deadline out. The demo and the in-process tests set ``off``: in Airflow 3.3.2
``dag.test()`` (and so ``airflow dags test``) fails every successful run of a DAG that has a
deadline, because it hands ``DagRun.update_state`` the DAG's alert definitions where the scheduler
hands it their stored ids (``'dict' object has no attribute 'hex'``). Under a scheduler it works.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

from judgeflow.errors import ConfigError

if TYPE_CHECKING:
    from airflow.sdk.definitions.deadline import DeadlineAlert

RUN_DEADLINE_ENV = "JUDGEFLOW_RUN_DEADLINE_HOURS"

DEADLINE_TEXT = (
    ":alarm_clock: judgeflow: {{ dag_run.dag_id }} run {{ dag_run.dag_run_id }} has not finished "
    "by its deadline ({{ deadline.deadline_time }} UTC). Scores for that day are late; check the run "
    "in Airflow."
)
"""Jinja template rendered with the deadline's context (the run, and the deadline itself)."""


def deadline_hours(default_hours: float, environ: dict[str, str] | None = None) -> float | None:
    """The hours a run may take, or None for no deadline; the environment overrides the default."""
    raw = (os.environ if environ is None else environ).get(RUN_DEADLINE_ENV, "").strip()
    if not raw:
        return default_hours
    if raw.lower() == "off":
        return None
    try:
        hours = float(raw)
    except ValueError:
        raise ConfigError(f"{RUN_DEADLINE_ENV} must be a number of hours or 'off', not {raw!r}") from None
    if hours <= 0:
        raise ConfigError(f"{RUN_DEADLINE_ENV} must be more than 0 hours (or 'off'), not {raw!r}")
    return hours


def run_deadline_alert(conn_id: str, *, hours: float) -> DeadlineAlert | None:
    """A deadline ``hours`` after the run was queued that posts to the Slack webhook ``conn_id``."""
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    chosen = deadline_hours(hours)
    if chosen is None:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(hours=chosen),
        callback=AsyncCallback(
            SlackWebhookNotifier,
            kwargs={"slack_webhook_conn_id": conn_id, "text": DEADLINE_TEXT},
        ),
    )
