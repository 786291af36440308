"""The dev kit's Slack webhook receiver as the ``slack_oncall`` connection, for tests that send alerts.

slack_sdk honours HTTP(S)_PROXY and ignores NO_PROXY, so the proxy variables are dropped for the test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


def drop_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def slack_oncall(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackReceiver]:
    """A receiver on a free port, reachable as the connection ``slack_oncall`` until the block ends."""
    with SlackReceiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(receiver.url))
        yield receiver
