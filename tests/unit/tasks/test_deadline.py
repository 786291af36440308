"""The deadline's hours: a default in the DAG, an override in the environment, or off."""

from __future__ import annotations

import datetime as dt

import pytest

from judgeflow.errors import ConfigError
from judgeflow.tasks.deadline import RUN_DEADLINE_ENV, deadline_hours, run_deadline_alert


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, 6.0, id="unset-keeps-the-default"),
        pytest.param({RUN_DEADLINE_ENV: " "}, 6.0, id="blank-keeps-the-default"),
        pytest.param({RUN_DEADLINE_ENV: "2.5"}, 2.5, id="hours-override"),
        pytest.param({RUN_DEADLINE_ENV: "OFF"}, None, id="off"),
    ],
)
def test_deadline_hours(environ: dict[str, str], expected: float | None) -> None:
    assert deadline_hours(6.0, environ) == expected


@pytest.mark.parametrize("raw", ["six", "0", "-1"])
def test_a_bad_override_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=RUN_DEADLINE_ENV):
        deadline_hours(6.0, {RUN_DEADLINE_ENV: raw})


def test_the_alert_counts_from_when_the_run_was_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.sdk.definitions.deadline import DagRunQueuedAtDeadline

    monkeypatch.delenv(RUN_DEADLINE_ENV, raising=False)
    alert = run_deadline_alert("slack_oncall", hours=6)
    assert alert is not None
    assert isinstance(alert.reference, DagRunQueuedAtDeadline), "a backfill of old days must not alert at once"
    assert alert.interval == dt.timedelta(hours=6)
    assert alert.callback.path.endswith(SlackWebhookNotifier.__name__)
    assert alert.callback.kwargs["slack_webhook_conn_id"] == "slack_oncall"


def test_off_leaves_the_deadline_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RUN_DEADLINE_ENV, "off")
    assert run_deadline_alert("slack_oncall", hours=6) is None
