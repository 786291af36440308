"""Error classification, fed with real SDK exceptions from real requests to the emulator."""

from __future__ import annotations

import socket
from typing import Any

import anthropic
import pytest

from judgeflow.errors import (
    JudgeError,
    Overloaded,
    RateLimited,
    RejectedRequest,
    TerminalJudgeError,
    TransientJudgeError,
)
from judgeflow.judging.classify import classify, retry_after_seconds
from judgeflow.judging.prompt import build_request
from judgeflow.records import ResponseItem
from judgeflow.rubric import load_rubric
from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer
from tests.support import ROOT

RUBRIC = load_rubric(ROOT / "include" / "rubrics", "helpfulness")


def judge_params(response: str = "Your parcel ships Monday.") -> dict[str, Any]:
    item = ResponseItem(response_id=1, question="Where is my parcel?", context=None, response=response)
    return build_request(RUBRIC, item, max_response_chars=10_000, max_output_tokens=512).params


def failure(
    config: EmulatorConfig,
    *,
    key: str = "test-key",
    timeout: float = 5.0,
    path: str = "",
    params: dict[str, Any] | None = None,
) -> anthropic.APIError:
    """The exception the unmodified SDK raises for one request to an emulator set up to fail."""
    with EmulatorServer(config) as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url + path, max_retries=0, timeout=timeout)
        with client, pytest.raises(anthropic.APIError) as info:
            client.messages.create(**(params or judge_params()))
    return info.value


def test_injected_429_is_rate_limited_with_retry_after() -> None:
    exc = failure(EmulatorConfig(latency_median_s=0.0, rate_429=1.0))
    assert isinstance(exc, anthropic.RateLimitError)
    error = classify(exc)
    assert type(error) is RateLimited
    assert error.retry_after == 1.0
    assert str(error) == "HTTP 429 rate_limit_error: Injected rate limit."


def test_requests_per_minute_429_carries_the_servers_retry_after() -> None:
    config = EmulatorConfig(latency_median_s=0.0, requests_per_minute=1, burst_seconds=60)
    with EmulatorServer(config) as server:
        client = anthropic.Anthropic(api_key="k", base_url=server.url, max_retries=0, timeout=5.0)
        with client:
            client.messages.create(**judge_params())
            with pytest.raises(anthropic.RateLimitError) as info:
                client.messages.create(**judge_params())
    error = classify(info.value)
    assert isinstance(error, RateLimited)
    header = info.value.response.headers["retry-after"]
    assert error.retry_after == float(header) > 0
    assert "requests per minute" in str(error)


@pytest.mark.parametrize(
    ("config", "sdk_type", "kind", "message"),
    [
        pytest.param(
            EmulatorConfig(latency_median_s=0.0, rate_529=1.0),
            anthropic.OverloadedError,
            Overloaded,
            "HTTP 529 overloaded_error: Overloaded",
            id="529",
        ),
        pytest.param(
            EmulatorConfig(latency_median_s=0.0, rate_500=1.0),
            anthropic.InternalServerError,
            TransientJudgeError,
            "HTTP 500 api_error: Internal server error",
            id="500",
        ),
    ],
)
def test_server_errors_are_transient(
    config: EmulatorConfig, sdk_type: type[Exception], kind: type[Exception], message: str
) -> None:
    """529 is its own kind (the task sends less), decided by its status, not by its message text."""
    exc = failure(config)
    assert isinstance(exc, sdk_type)
    error = classify(exc)
    assert type(error) is kind
    assert isinstance(error, TransientJudgeError)
    assert str(error) == message
    assert error.retry_after is None


def test_timeout_from_a_hung_request_is_transient() -> None:
    exc = failure(EmulatorConfig(latency_median_s=0.0, rate_hang=1.0, hang_seconds=2.0), timeout=0.3)
    assert isinstance(exc, anthropic.APITimeoutError)
    error = classify(exc)
    assert type(error) is TransientJudgeError
    assert str(error).startswith("APITimeoutError")


def test_refused_connection_is_transient() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = anthropic.Anthropic(api_key="k", base_url=f"http://127.0.0.1:{port}", max_retries=0, timeout=2.0)
    with client, pytest.raises(anthropic.APIConnectionError) as info:
        client.messages.create(**judge_params())
    error = classify(info.value)
    assert type(error) is TransientJudgeError
    assert str(error).startswith("APIConnectionError")


def test_wrong_api_key_is_terminal() -> None:
    exc = failure(EmulatorConfig(latency_median_s=0.0, api_key="right"), key="wrong")
    assert isinstance(exc, anthropic.AuthenticationError)
    error = classify(exc)
    assert type(error) is TerminalJudgeError
    assert str(error) == "HTTP 401 authentication_error: invalid x-api-key"


def test_unknown_endpoint_is_terminal() -> None:
    exc = failure(EmulatorConfig(latency_median_s=0.0), path="/no-such-prefix")
    assert isinstance(exc, anthropic.NotFoundError)
    error = classify(exc)
    assert type(error) is TerminalJudgeError
    assert str(error).startswith("HTTP 404 not_found_error")


def test_invalid_request_body_is_rejected_not_terminal() -> None:
    params = {**judge_params(), "messages": []}
    exc = failure(EmulatorConfig(latency_median_s=0.0), params=params)
    assert isinstance(exc, anthropic.BadRequestError)
    error = classify(exc)
    assert type(error) is RejectedRequest
    assert str(error) == "HTTP 400 invalid_request_error: messages: Field required"


def test_too_many_cache_breakpoints_is_rejected() -> None:
    params = judge_params()
    block = params["system"][0]
    params["system"] = [dict(block) for _ in range(5)]
    exc = failure(EmulatorConfig(latency_median_s=0.0), params=params)
    error = classify(exc)
    assert type(error) is RejectedRequest
    assert "maximum of 4 blocks with cache_control" in str(error)


def test_our_own_errors_pass_through_unchanged() -> None:
    mine = RateLimited("slow down", retry_after=3.0)
    assert classify(mine) is mine


@pytest.mark.parametrize(
    "exc",
    [pytest.param(ValueError("odd"), id="value-error"), pytest.param(OSError("reset"), id="os-error")],
)
def test_unknown_failures_count_as_transient(exc: Exception) -> None:
    error = classify(exc)
    assert isinstance(error, JudgeError)
    assert type(error) is TransientJudgeError
    assert str(error) == f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("1", 1.0, id="integer"),
        pytest.param("30", 30.0, id="thirty"),
        pytest.param("0.25", 0.25, id="fraction"),
        pytest.param(" 2 ", 2.0, id="padded"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("-5", 0.0, id="negative-clamped"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="word"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", None, id="http-date"),
    ],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


def test_infinite_retry_after_is_ignored() -> None:
    assert retry_after_seconds("inf") is None
