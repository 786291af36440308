"""judgeflow.quality.alerts against a real HTTP webhook receiver, through Airflow's Slack provider.

The connection comes in as ``AIRFLOW_CONN_SLACK_ONCALL`` (no metadata database needed). Proxy
variables are removed because slack_sdk would send 127.0.0.1 traffic through them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from judgeflow.quality.alerts import AlertContext, build_alert_blocks, decide_alert, send_alert
from judgeflow.quality.regression import ComparisonStatus, MetricComparison, RegressionReport
from judgeflow.tasks.notifiers import failure_notifier
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.support.slack import drop_proxies, slack_oncall

CONN_ID = "slack_oncall"
START = dt.datetime(2025, 3, 8, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_proxies(monkeypatch)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackReceiver]:
    with slack_oncall(monkeypatch) as receiver:
        yield receiver


def alert_message() -> tuple[str, list[dict[str, object]]]:
    regression = MetricComparison(
        metric="accuracy",
        baseline_n=120,
        baseline_mean=4.1,
        current_n=140,
        current_mean=3.2,
        difference=-0.9,
        p_value=0.001,
        status=ComparisonStatus.REGRESSION,
    )
    report = RegressionReport(
        current_start=START,
        current_end=START + dt.timedelta(days=1),
        baseline_start=START - dt.timedelta(days=7),
        alpha=0.05,
        min_samples=30,
        min_drop=0.25,
        comparisons=(regression,),
    )
    ctx = AlertContext(
        dag_id="judgeflow_daily",
        run_id="scheduled__2025-03-08T00:00:00+00:00",
        rubric_name="helpfulness",
        rubric_version="3",
        interval_start=START,
        interval_end=START + dt.timedelta(days=1),
        run_url="http://localhost:8080/dags/judgeflow_daily/runs/x",
        extracted=200,
        scored=196,
        from_cache=20,
        errors=4,
        cost_usd=1.23,
        rolling_average=2.8,
        rolling_count=1400,
        threshold=3.0,
        report=report,
    )
    return build_alert_blocks(ctx, decide_alert(ctx))


def test_alert_is_delivered_once_with_the_built_blocks(slack: SlackReceiver) -> None:
    text, blocks = alert_message()

    assert send_alert(conn_id=CONN_ID, text=text, blocks=blocks) is True

    [payload] = slack.wait_for(1)
    assert payload == {"text": text, "blocks": blocks}
    time.sleep(0.2)
    assert len(slack.payloads) == 1


def test_slack_answering_500_is_false_not_an_exception(slack: SlackReceiver, caplog: pytest.LogCaptureFixture) -> None:
    slack.status = 500
    text, blocks = alert_message()

    with caplog.at_level(logging.ERROR, logger="judgeflow.quality.alerts"):
        assert send_alert(conn_id=CONN_ID, text=text, blocks=blocks) is False

    assert len(slack.wait_for(1)) == 1
    assert "failed" in caplog.text


@pytest.mark.parametrize("via", ["connection-extra", "argument"])
def test_slack_slower_than_the_timeout_is_false(monkeypatch: pytest.MonkeyPatch, via: str) -> None:
    text, blocks = alert_message()
    with SlackReceiver(delay_s=5) as slow:
        if via == "connection-extra":
            monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slow.url, timeout=1))
            timeout = None
        else:
            monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slow.url))
            timeout = 1
        began = time.monotonic()

        assert send_alert(conn_id=CONN_ID, text=text, blocks=blocks, timeout=timeout) is False

        assert time.monotonic() - began < 4
        assert len(slow.payloads) >= 1


def test_unknown_connection_is_a_warning_and_false(caplog: pytest.LogCaptureFixture) -> None:
    text, blocks = alert_message()

    with caplog.at_level(logging.WARNING, logger="judgeflow.quality.alerts"):
        assert send_alert(conn_id="slack_nowhere", text=text, blocks=blocks) is False

    assert "Slack connection slack_nowhere not configured; alert not sent" in caplog.text


def test_unreachable_slack_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    with SlackReceiver() as gone:
        url = gone.url
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(url, timeout=2))

    assert send_alert(conn_id=CONN_ID, text="t", blocks=[]) is False


def test_failure_notifier_posts_the_rendered_text(slack: SlackReceiver) -> None:
    from airflow.sdk import DAG

    notifier = failure_notifier(CONN_ID)
    ti = SimpleNamespace(task_id="score", log_url="http://localhost:8080/log?x=1")

    notifier({"dag": DAG("judgeflow_daily", schedule=None), "ti": ti, "run_id": "manual__1"})

    [payload] = slack.wait_for(1)
    assert "judgeflow_daily" in payload["text"]
    assert "score" in payload["text"]
    assert "manual__1" in payload["text"]
    assert "http://localhost:8080/log?x=1" in payload["text"]
