"""The small records that flow between modules: what is judged, what comes back, what is stored.

They are plain frozen dataclasses so every layer (engine, cache, warehouse, alerts) can share them
without importing each other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class ResponseItem:
    """One production response to judge, as read from the source table."""

    response_id: Any
    question: str | None
    context: str | None
    response: str | None
    segments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CriterionScore:
    """The judge's score for one rubric criterion, with its short reason."""

    score: int
    rationale: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """A validated verdict: every rubric criterion scored, and the weighted overall score."""

    criteria: dict[str, CriterionScore]
    overall: float

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "criteria": {k: {"score": v.score, "rationale": v.rationale} for k, v in self.criteria.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            criteria={
                k: CriterionScore(score=int(v["score"]), rationale=str(v["rationale"]))
                for k, v in data["criteria"].items()
            },
            overall=float(data["overall"]),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts from one API reply (``usage``); zero for a cache hit."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_1h_tokens: int = 0
    """The part of ``cache_write_tokens`` written with a 1-hour TTL (billed higher than 5 minutes)."""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )

    @property
    def prompt_tokens(self) -> int:
        """Every input token of the request, cached or not: what a long-context price tier looks at."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens


class ErrorKind(StrEnum):
    """Why a response has no score. ``retryable`` kinds are extracted again by the next run."""

    INVALID_INPUT = "invalid_input"
    MALFORMED_VERDICT = "malformed_verdict"
    JUDGE_ERROR = "judge_error"
    TERMINAL = "terminal"
    BUDGET_EXHAUSTED = "budget_exhausted"

    @property
    def retryable(self) -> bool:
        return self is not ErrorKind.INVALID_INPUT


@dataclass(frozen=True, slots=True)
class ScoreRecord:
    """One row of ``judge_scores`` (and its per-criterion rows)."""

    response_id: Any
    rubric_name: str
    rubric_version: str
    overall: float
    criteria: dict[str, CriterionScore]
    model: str
    usage: Usage
    cost_usd: float
    latency_ms: int
    cache_hit: bool
    truncated: bool
    dag_run_id: str
    scored_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One row of ``judge_errors``: a response that has no score, and why."""

    response_id: Any
    rubric_name: str
    rubric_version: str
    kind: ErrorKind
    reason: str
    attempts: int
    dag_run_id: str
    recorded_at: dt.datetime
    raw_reply: str | None = None

    @property
    def retryable(self) -> bool:
        return self.kind.retryable


@dataclass(frozen=True, slots=True)
class BatchRef:
    """What XCom carries to a mapped score task: a key into ``judge_run_items``, never texts.

    ``run_key`` is the run's one staging; ``rubric`` the rubric this task judges the batch under,
    and ``result_key`` the key its Message Batches are recorded under (the run key, or with several
    rubrics the run key and the rubric). Empty for a descriptor from before suites: the run's rubric."""

    run_key: str
    batch_index: int
    size: int
    first_id: str
    last_id: str
    rubric: str = ""
    result_key: str = ""

    @property
    def label(self) -> str:
        judged = f"{self.rubric} " if self.rubric else ""
        return f"{judged}batch {self.batch_index} ({self.size} responses, ids {self.first_id}..{self.last_id})"

    @property
    def batches_key(self) -> str:
        """The key of this task's rows in ``judge_message_batches``."""
        return self.result_key or self.run_key

    def for_rubric(self, rubric: str, result_key: str) -> BatchRef:
        return BatchRef(self.run_key, self.batch_index, self.size, self.first_id, self.last_id, rubric, result_key)

    def to_xcom(self) -> dict[str, Any]:
        return {
            "run_key": self.run_key,
            "batch_index": self.batch_index,
            "size": self.size,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "rubric": self.rubric,
            "result_key": self.result_key,
        }

    @classmethod
    def from_xcom(cls, data: dict[str, Any]) -> BatchRef:
        return cls(**data)


@dataclass(frozen=True, slots=True)
class NoiseRecord:
    """One row of ``judge_noise``: a sampled response judged twice, the second time past the cache.

    ``second`` is empty and ``error`` says why when the second ask failed (the primary score is kept
    whatever happens here)."""

    response_id: Any
    rubric_name: str
    rubric_version: str
    dag_run_id: str
    first: dict[str, int]
    second: dict[str, int]
    cost_usd: float
    error: str | None
    recorded_at: dt.datetime

    @property
    def spread(self) -> int | None:
        """The largest disagreement between the two asks over the criteria, in points."""
        gaps = [abs(self.first[c] - self.second[c]) for c in self.first if c in self.second]
        return max(gaps) if gaps else None
