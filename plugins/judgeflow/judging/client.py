"""The async Anthropic client, built from the Airflow connection by the provider's hook.

The SDK's own retries are switched off (``max_retries=0``): :mod:`judgeflow.judging.judge_call`
owns retries, so it can count them, share back-off across calls and stop on terminal errors.
"""

from __future__ import annotations

from typing import Any

from judgeflow.errors import ConfigError


async def open_async_client(conn_id: str, *, timeout_s: float) -> Any:
    """An ``AsyncAnthropic`` for connection ``conn_id`` (password = API key, host = base URL)."""
    from airflow.providers.anthropic.hooks.anthropic import AnthropicHook

    try:
        client = await AnthropicHook(conn_id=conn_id).get_async_conn()
    except Exception as exc:
        if type(exc).__name__ == "AirflowNotFoundException":
            raise ConfigError(
                f"Airflow connection {conn_id!r} is not defined; set AIRFLOW_CONN_{conn_id.upper()} to "
                '\'{"conn_type": "anthropic", "password": "<API key>"}\' (add "host" for a gateway '
                "or the local emulator)"
            ) from exc
        raise
    return client.with_options(max_retries=0, timeout=timeout_s)


async def judge_endpoint(conn_id: str) -> str:
    """The base URL the judge is reached at through connection ``conn_id`` (its host, else the SDK's
    default, ``https://api.anthropic.com``): what a calibration records, and what the gate matches."""
    client = await open_async_client(conn_id, timeout_s=5.0)
    try:
        return str(client.base_url).rstrip("/")
    finally:
        await client.close()
