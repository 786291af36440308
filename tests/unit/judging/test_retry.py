"""The retry policy: one table of error kinds, applied by class, never by what an error message says."""

from __future__ import annotations

import random

import pytest

from judgeflow import errors
from judgeflow.config import JudgeConfig
from judgeflow.judging.retry import POLICY, Action, Decision, backoff, decide

CONFIG = JudgeConfig(max_attempts=5, backoff_base_s=0.5, backoff_max_s=30.0)


def decision(error: errors.JudgeError, attempts: int = 1) -> Decision:
    return decide(error, attempts=attempts, config=CONFIG, rng=random.Random(7))


@pytest.mark.parametrize(
    ("error", "action", "throttle", "throttle_s", "waits"),
    [
        pytest.param(
            errors.RateLimited("429", retry_after=3.0), Action.RETRY, True, 3.0, False, id="429-pauses-everyone"
        ),
        pytest.param(
            errors.Overloaded("busy", retry_after=2.0), Action.RETRY, True, 2.0, True, id="529-slows-and-waits"
        ),
        pytest.param(errors.Overloaded("busy"), Action.RETRY, True, None, True, id="529-without-retry-after"),
        pytest.param(errors.TransientJudgeError("HTTP 500"), Action.RETRY, False, None, True, id="5xx-backs-off"),
        pytest.param(errors.RejectedRequest("too long"), Action.RECORD, False, None, False, id="400-is-recorded"),
        pytest.param(errors.TerminalJudgeError("bad key"), Action.STOP, False, None, False, id="401-stops-the-task"),
    ],
)
def test_each_kind_has_one_decision(
    error: errors.JudgeError, action: Action, throttle: bool, throttle_s: float | None, waits: bool
) -> None:
    d = decision(error)
    assert d.action is action
    assert d.throttle is throttle
    assert d.throttle_s == throttle_s
    assert (d.wait_s > 0) is waits


def test_the_message_text_decides_nothing() -> None:
    """A 500 whose body mentions 529 or 'overloaded' is an ordinary transient error; an errors.Overloaded
    error with any text throttles. (The old policy matched ``"529" in str(error)``.)"""
    assert not decision(errors.TransientJudgeError("HTTP 500 api_error: upstream 529 overloaded")).throttle
    assert decision(errors.Overloaded("HTTP 529 something else entirely")).throttle


def test_a_rate_limit_without_retry_after_pauses_for_a_backoff() -> None:
    d = decision(errors.RateLimited("429"), attempts=3)
    assert d.action is Action.RETRY and d.wait_s == 0
    assert d.throttle_s is not None and 1.0 <= d.throttle_s <= 2.0


def test_rate_limits_get_four_times_the_attempts_of_other_retries() -> None:
    assert decision(errors.TransientJudgeError("x"), attempts=4).action is Action.RETRY
    assert decision(errors.TransientJudgeError("x"), attempts=5).action is Action.RECORD
    assert decision(errors.RateLimited("x", retry_after=1.0), attempts=19).action is Action.RETRY
    recorded = decision(errors.RateLimited("x", retry_after=1.0), attempts=20)
    assert recorded.action is Action.RECORD
    assert recorded.throttle, "the task still slows down on the attempt it gives up on"


def test_the_most_specific_kind_wins_and_every_kind_is_in_the_table() -> None:
    assert POLICY[errors.Overloaded] != POLICY[errors.TransientJudgeError]
    for kind in (
        errors.RateLimited,
        errors.Overloaded,
        errors.TransientJudgeError,
        errors.RejectedRequest,
        errors.TerminalJudgeError,
    ):
        assert kind in POLICY

    class Unknown(errors.JudgeError):
        pass

    assert decision(Unknown("?")).action is Action.RETRY, "an unknown judge error is worth another try"


@pytest.mark.parametrize("attempts", [1, 2, 5, 12])
def test_backoff_is_jittered_in_the_upper_half_and_capped(attempts: int) -> None:
    ceiling = min(CONFIG.backoff_max_s, CONFIG.backoff_base_s * 2 ** (attempts - 1))
    draws = [backoff(attempts, CONFIG, random.Random(seed)) for seed in range(50)]
    assert all(ceiling / 2 <= d <= ceiling for d in draws)
    assert len(set(draws)) > 1
