"""The error tree, one class per decision a caller has to make.

::

    JudgeflowError
    ├── ConfigError                fail fast, say which key
    ├── WarehouseError             retry the task
    └── JudgeError
        ├── RateLimited(retry_after)   wait, then retry
        ├── TransientJudgeError        backoff and retry
        │   └── Overloaded             the API is overloaded (529): slow the task down too
        ├── RejectedRequest            this request is wrong: record it, go on
        └── TerminalJudgeError         stop the run (auth, billing, a 400 every request gets)

What each kind means for the next attempt is written once, in :data:`judgeflow.judging.retry.POLICY`.

An unparseable verdict is not an exception: it is an :class:`~judgeflow.judging.verdict.Unscored`
value with its reason, so it can be stored and queried.
"""

from __future__ import annotations


class JudgeflowError(Exception):
    """Base of every error judgeflow raises on purpose."""


class ConfigError(JudgeflowError):
    """A setting, rubric or connection is wrong; the message names the key."""


class WarehouseError(JudgeflowError):
    """The warehouse could not be read or written; retrying the task is safe."""


class JudgeError(JudgeflowError):
    """A call to the judge failed."""


class RateLimited(JudgeError):
    """The API said 429: wait ``retry_after`` seconds, then retry."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientJudgeError(JudgeError):
    """529, 5xx, timeout or a dropped connection: back off and retry."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(TransientJudgeError):
    """529 ``overloaded_error``: the API as a whole is busy, so the task sends less, then retries."""


class RejectedRequest(JudgeError):
    """A 400-class answer about this one request (too long, bad content): record it and go on."""


class TerminalJudgeError(JudgeError):
    """Retrying cannot help (401/403, billing, a request every call gets wrong): stop the run."""


__all__ = [
    "ConfigError",
    "JudgeError",
    "JudgeflowError",
    "Overloaded",
    "RateLimited",
    "RejectedRequest",
    "TerminalJudgeError",
    "TransientJudgeError",
    "WarehouseError",
]
