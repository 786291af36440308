"""Build the Messages API reply for a parsed request: the verdict, its form, and the usage.

Pure and free of HTTP (the caller supplies the prompt-cache outcome and any malformation), so the
Message Batches store (:mod:`~judgeflow_devkit.emulator.batches`) produces the same ``message`` objects
as the live endpoint.
"""

from __future__ import annotations

import json
import random
from typing import Any, NamedTuple

from judgeflow_devkit.emulator.envelope import new_id
from judgeflow_devkit.emulator.faults import Malformation
from judgeflow_devkit.emulator.prompt_cache import CacheUsage
from judgeflow_devkit.emulator.request import JudgeRequest, OutputMode
from judgeflow_devkit.emulator.scoring import emulated_rationale, emulated_scores, with_noise
from judgeflow_devkit.emulator.tokens import count_tokens

MALFORMED_TEXT = "Overall I would rate this response a 4 out of 5; it is mostly accurate."
"""What JSON-schema mode answers when a malformed verdict is injected: text that is not JSON."""

TEXT_REPLY = "Emulated judge: give a tool or output_config.format json_schema to get a verdict."


class Reply(NamedTuple):
    """The ``message`` object and the usage it reports (also summed into the stats)."""

    body: dict[str, Any]
    input_tokens: int
    output_tokens: int
    cache: CacheUsage


class Noise(NamedTuple):
    """Judge noise for one reply: the knob and the RNG it draws from (see ``EmulatorConfig.score_noise``)."""

    rate: float
    rng: random.Random


def verdict(request: JudgeRequest, *, obey_injections: bool = False, noise: Noise | None = None) -> dict[str, Any]:
    """The well-formed verdict: every criterion with its emulated score and rationale."""
    out: dict[str, Any] = {}
    for c in request.criteria:
        scores = emulated_scores(
            request.judged_text, [c.name], c.scale_min, c.scale_max, obey_injections=obey_injections
        )
        if noise is not None:
            scores = with_noise(scores, c.scale_min, c.scale_max, rate=noise.rate, rng=noise.rng)
        score = scores[c.name]
        out[c.name] = {"score": score, "rationale": emulated_rationale(c.name, score)} if c.nested else score
    return out


def malform(request: JudgeRequest, good: dict[str, Any], how: Malformation) -> dict[str, Any]:
    """Break the verdict the way a real judge sometimes does: drop the last criterion, or put its
    score one above the scale."""
    if not request.criteria:
        return {"verdict": "unparseable"}
    last = request.criteria[-1]
    bad = dict(good)
    if how is Malformation.MISSING_CRITERION:
        del bad[last.name]
    elif last.nested:
        bad[last.name] = {**bad[last.name], "score": last.scale_max + 1}
    else:
        bad[last.name] = last.scale_max + 1
    return bad


def build_reply(
    request: JudgeRequest,
    *,
    cache: CacheUsage,
    malformation: Malformation | None = None,
    obey_injections: bool = False,
    noise: Noise | None = None,
) -> Reply:
    """The assistant ``message``; a reply longer than ``max_tokens`` stops with ``max_tokens``."""
    answer = verdict(request, obey_injections=obey_injections, noise=noise)
    if malformation is not None:
        answer = malform(request, answer, malformation)
    if request.mode is OutputMode.TOOL:
        text = json.dumps(answer)
    elif request.mode is OutputMode.JSON_SCHEMA:
        text = MALFORMED_TEXT if malformation is not None else json.dumps(answer)
    else:
        text = TEXT_REPLY
    output_tokens = count_tokens(text, request.model)
    stop_reason = "tool_use" if request.mode is OutputMode.TOOL else "end_turn"
    if output_tokens > request.max_tokens:
        output_tokens, stop_reason = request.max_tokens, "max_tokens"
        answer, text = {}, text[: request.max_tokens * 4]
    if request.mode is OutputMode.TOOL:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": new_id("toolu"),
            "name": request.tool_name,
            "input": answer,
        }
    else:
        block = {"type": "text", "text": text}
    input_tokens = request.input_tokens - cache.read - cache.creation
    body = {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [block],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache.creation,
            "cache_read_input_tokens": cache.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cache.creation - cache.creation_1h,
                "ephemeral_1h_input_tokens": cache.creation_1h,
            },
            "service_tier": "standard",
        },
    }
    return Reply(body, input_tokens, output_tokens, cache)
