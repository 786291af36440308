"""Turn the judge's reply into a validated :class:`~judgeflow.records.Verdict`, or say why not.

A reply that does not validate is a value (:class:`Unscored`, with the reason and the raw reply),
never an exception and never a default score: the caller asks once more, then records an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgeflow.judging.prompt import VERDICT_TOOL_NAME
from judgeflow.records import CriterionScore, Verdict
from judgeflow.rubric import Rubric

MAX_RATIONALE_CHARS = 2000


class _CriterionReply(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    score: int
    rationale: str = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class Unscored:
    """A reply that is not a valid verdict: why, and what came back (for the error table)."""

    reason: str
    raw_reply: str


def parse_verdict(content: list[Any], rubric: Rubric) -> Verdict | Unscored:
    """Validate the reply's content blocks (SDK objects or dicts) against the rubric."""
    payload = _verdict_payload(content)
    if isinstance(payload, Unscored):
        return payload
    return validate_payload(payload, rubric)


def validate_payload(payload: Any, rubric: Rubric) -> Verdict | Unscored:
    """Check every criterion is present, typed and inside the rubric's scale."""
    raw = _dump(payload)
    if not isinstance(payload, dict):
        return Unscored(f"verdict is {type(payload).__name__}, not an object", raw)
    missing = [name for name in rubric.criterion_names if name not in payload]
    if missing:
        return Unscored(f"verdict misses criteria {missing}", raw)
    criteria: dict[str, CriterionScore] = {}
    for name in rubric.criterion_names:
        try:
            reply = _CriterionReply.model_validate(payload[name])
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return Unscored(f"criterion {name!r}: {problems}", raw)
        if not rubric.scale.min <= reply.score <= rubric.scale.max:
            scale = f"{rubric.scale.min}..{rubric.scale.max}"
            return Unscored(f"criterion {name!r}: score {reply.score} outside {scale}", raw)
        rationale = reply.rationale.strip()
        if not rationale:
            return Unscored(f"criterion {name!r}: the rationale is blank", raw)
        criteria[name] = CriterionScore(reply.score, rationale[:MAX_RATIONALE_CHARS])
    overall = rubric.overall({name: c.score for name, c in criteria.items()})
    return Verdict(criteria=criteria, overall=overall)


def _verdict_payload(content: list[Any]) -> Any:
    """The tool input of the forced tool call, or the JSON text of a json_schema reply."""
    blocks = [_as_dict(block) for block in content]
    for block in blocks:
        if block.get("type") == "tool_use" and block.get("name") == VERDICT_TOOL_NAME:
            return block.get("input")
    texts = [block.get("text", "") for block in blocks if block.get("type") == "text"]
    if texts:
        joined = "".join(texts)
        try:
            return json.loads(joined)
        except json.JSONDecodeError as exc:
            return Unscored(f"reply text is not JSON ({exc.msg})", joined)
    return Unscored(f"no {VERDICT_TOOL_NAME} tool call in the reply", _dump(blocks))


def _as_dict(block: Any) -> dict[str, Any]:
    if isinstance(block, dict):
        return block
    if hasattr(block, "model_dump"):
        dumped = block.model_dump()
        return dumped if isinstance(dumped, dict) else {}
    return {}


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:20_000]
    except (TypeError, ValueError):
        return repr(value)[:20_000]
