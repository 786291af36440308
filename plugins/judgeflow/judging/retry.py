"""The retry policy for judge requests, in one table: what each kind of failure means for the next attempt.

:func:`judgeflow.judging.classify.classify` turns an SDK exception into a kind of the error tree
(:mod:`judgeflow.errors`); :data:`POLICY` says, per kind, whether to try again, how many attempts
the kind may use, whether the whole task should send less (AIMD concurrency, halved), and whether
this call waits before its next attempt. :func:`decide` applies it; the caller
(:class:`judgeflow.judging.judge_call.JudgeCaller`) only carries the decision out. Nothing here
reads error messages: a decision depends on the error's class and its ``retry_after``.

================  =====  ========  ========  =====================================================
kind              retry  attempts  throttle  wait before the next attempt
================  =====  ========  ========  =====================================================
RateLimited       yes    4 x max   yes       none here: the throttle pauses every call for
                                             ``retry-after`` (or a back-off when the API gave none)
Overloaded        yes    max       yes       ``retry-after``, else jittered exponential back-off
Transient         yes    max       no        ``retry-after``, else jittered exponential back-off
RejectedRequest   no     1         no        record the error and go on with the other responses
Terminal          no     1         no        stop every call of the task
================  =====  ========  ========  =====================================================

A malformed verdict is not an error of this tree (the reply came back and was billed): the caller
asks once more, up to ``judge.verdict_attempts``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from judgeflow import errors
from judgeflow.config import JudgeConfig


class Action(StrEnum):
    RETRY = "retry"
    RECORD = "record"  # give up on this request: it becomes an error row, the task goes on
    STOP = "stop"  # give up on the task: no request of it can succeed


@dataclass(frozen=True, slots=True)
class Rule:
    """How one kind of failure is handled."""

    retry: bool
    attempts_factor: int = 1
    throttle: bool = False
    wait: bool = True
    stop: bool = False


POLICY: Mapping[type[errors.JudgeError], Rule] = MappingProxyType(
    {
        errors.RateLimited: Rule(retry=True, attempts_factor=4, throttle=True, wait=False),
        errors.Overloaded: Rule(retry=True, throttle=True),
        errors.TransientJudgeError: Rule(retry=True),
        errors.RejectedRequest: Rule(retry=False),
        errors.TerminalJudgeError: Rule(retry=False, stop=True),
    }
)
"""Looked up by the error's class, most specific first (``Overloaded`` before ``TransientJudgeError``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after one failed attempt: the action, the throttle, and this call's wait."""

    action: Action
    throttle_s: float | None = None  # halve the task's concurrency; pause every call this long (if set)
    throttle: bool = False
    wait_s: float = 0.0


def rule_for(error: errors.JudgeError) -> Rule:
    for kind in type(error).__mro__:
        if kind in POLICY:
            return POLICY[kind]
    return POLICY[errors.TransientJudgeError]  # an unknown judge error is worth another try


def decide(error: errors.JudgeError, *, attempts: int, config: JudgeConfig, rng: random.Random) -> Decision:
    """The decision after ``attempts`` attempts of one request ended with ``error``."""
    rule = rule_for(error)
    if rule.stop:
        return Decision(Action.STOP)
    if not rule.retry:
        return Decision(Action.RECORD)
    retry_after = getattr(error, "retry_after", None)
    throttle_s = retry_after if rule.throttle else None
    if rule.throttle and throttle_s is None and not rule.wait:  # the pause is all the waiting this kind gets
        throttle_s = backoff(attempts, config, rng)
    if attempts >= config.max_attempts * rule.attempts_factor:
        return Decision(Action.RECORD, throttle_s=throttle_s, throttle=rule.throttle)
    wait_s = 0.0
    if rule.wait:
        wait_s = retry_after if retry_after is not None else backoff(attempts, config, rng)
    return Decision(Action.RETRY, throttle_s=throttle_s, throttle=rule.throttle, wait_s=wait_s)


def backoff(attempts: int, config: JudgeConfig, rng: random.Random) -> float:
    """Jittered exponential back-off, capped: uniform in the upper half of ``base * 2^(n-1)``."""
    ceiling = min(config.backoff_max_s, config.backoff_base_s * 2 ** (attempts - 1))
    return rng.uniform(ceiling / 2, ceiling)
