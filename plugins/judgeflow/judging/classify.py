"""Sort API failures into the decisions of the error tree: wait, back off, record, or stop.

Only classification lives here; what each kind means for the next attempt is
:data:`judgeflow.judging.retry.POLICY`, and :mod:`judgeflow.judging.judge_call` carries it out.
"""

from __future__ import annotations

import math

import anthropic

from judgeflow import errors

#: A longer ``retry-after`` is treated as this; the task's own deadline handles the rest.
MAX_RETRY_AFTER_S = 300.0
_BILLING_HINTS = ("credit balance", "billing", "quota", "spend limit")


def classify(exc: BaseException) -> errors.JudgeError:
    """Map an SDK exception to one of our typed errors; unknown failures count as transient."""
    if isinstance(exc, errors.JudgeError):
        return exc
    if isinstance(exc, anthropic.APIConnectionError):  # includes timeouts
        return errors.TransientJudgeError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, anthropic.APIStatusError):
        return _classify_status(exc)
    return errors.TransientJudgeError(f"{type(exc).__name__}: {exc}")


def _classify_status(exc: anthropic.APIStatusError) -> errors.JudgeError:
    status = exc.status_code
    message = f"HTTP {status} {_error_type(exc)}: {_error_message(exc)}"
    retry_after = retry_after_seconds(exc.response.headers.get("retry-after"))
    if status == 429:
        return errors.RateLimited(message, retry_after=retry_after)
    if status == 529 or _error_type(exc) == "overloaded_error":
        return errors.Overloaded(message, retry_after=retry_after)
    if status in (401, 402, 403, 404):
        return errors.TerminalJudgeError(message)
    if status in (408, 409) or status >= 500:
        return errors.TransientJudgeError(message, retry_after=retry_after)
    if any(hint in message.lower() for hint in _BILLING_HINTS):
        return errors.TerminalJudgeError(message)
    return errors.RejectedRequest(message)


def retry_after_seconds(value: str | None) -> float | None:
    """``retry-after`` in seconds (the API sends an integer); anything unreadable is ignored."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("type", ""))
    return ""


def _error_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", exc.message))
    return str(exc.message)
