"""send_alert against the dev kit's Slack webhook receiver: what it returns and what it logs.

Its promise: ``True`` only when Slack took the message, and never an exception (a failed alert must
not fail a scoring run). The connection comes in as ``AIRFLOW_CONN_SLACK_ONCALL``; proxy variables
are removed because slack_sdk would send 127.0.0.1 traffic through them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import airflow.providers.slack.hooks.slack_webhook  # noqa: F401  (Airflow sets up logging on import: before caplog)
import pytest

from judgeflow.quality.alerts import send_alert
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.support.slack import drop_proxies, slack_oncall

CONN_ID = "slack_oncall"
LOGGER = "judgeflow.quality.alerts"
BLOCKS: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Why*\n• drop"}}]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_proxies(monkeypatch)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackReceiver]:
    with slack_oncall(monkeypatch) as receiver:
        yield receiver


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    return [r for r in caplog.record_tuples if r[0] == LOGGER]


def test_slack_gets_the_text_and_blocks_and_the_send_is_logged(
    slack: SlackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert send_alert(conn_id=CONN_ID, text="quality drop", blocks=BLOCKS) is True

    assert slack.wait_for(1) == [{"text": "quality drop", "blocks": BLOCKS}]
    assert records(caplog) == [(LOGGER, logging.INFO, "Slack alert sent via connection slack_oncall")]


def test_slack_answering_500_is_false_and_an_error_naming_the_answer(
    slack: SlackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    slack.status = 500

    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert send_alert(conn_id=CONN_ID, text="t", blocks=BLOCKS) is False

    assert records(caplog) == [
        (
            LOGGER,
            logging.ERROR,
            "Slack alert via connection slack_oncall failed: AirflowException: Response body: 'internal_error', "
            "Status Code: 500. See: https://api.slack.com/messaging/webhooks#handling_errors",
        )
    ]


def test_the_timeout_argument_overrides_the_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A Slack slower than ``timeout`` is a logged error and ``False``, not a wait for the connection's 30 s.

    slack_sdk hands the timeout to urllib, which takes fractions of a second: 0.2 s keeps the test fast.
    """
    with SlackReceiver(delay_s=2) as slow:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(slow.url))
        began = time.monotonic()

        with caplog.at_level(logging.INFO, logger=LOGGER):
            assert send_alert(conn_id=CONN_ID, text="t", blocks=BLOCKS, timeout=0.2) is False  # type: ignore[arg-type]

        assert time.monotonic() - began < 1.5
        assert len(slow.payloads) == 1
    assert records(caplog) == [
        (LOGGER, logging.ERROR, "Slack alert via connection slack_oncall failed: TimeoutError: timed out")
    ]


def test_an_unknown_connection_is_false_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert send_alert(conn_id="slack_nowhere", text="t", blocks=BLOCKS) is False

    assert records(caplog) == [
        (LOGGER, logging.WARNING, "Slack connection slack_nowhere not configured; alert not sent")
    ]


def test_an_unexpected_failure_is_false_and_logged_with_its_traceback(
    slack: SlackReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A block that cannot be serialised fails inside slack_sdk with a TypeError, which no handler expects."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert send_alert(conn_id=CONN_ID, text="t", blocks=[{"type": "divider", "x": {1}}]) is False

    [record] = [r for r in caplog.records if r.name == LOGGER]
    assert (record.levelno, record.getMessage()) == (
        logging.ERROR,
        "Slack alert via connection slack_oncall failed unexpectedly; not retried",
    )
    assert record.exc_info is not None and record.exc_info[0] is TypeError
    assert slack.payloads == []
