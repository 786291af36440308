"""Test doubles that are real servers: they listen on 127.0.0.1 and speak the real protocol."""

from __future__ import annotations

from tests.support.slack_receiver import SlackReceiver, connection_json

__all__ = ["SlackReceiver", "connection_json"]
