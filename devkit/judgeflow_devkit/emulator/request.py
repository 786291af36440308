"""Read a Messages API request body into what the emulated judge needs, or refuse it with a 400.

Pure and free of HTTP so the Message Batches store reuses it for every batch request. It
finds the rubric (criterion names and score ranges) in the forced tool's ``input_schema`` or in
``output_config.format.schema``, the judged text between ``<response>`` tags in the last user
message (unescaped, because the client escapes it), and the prompt's token segments in the order
the API caches them: tools, system, messages.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NoReturn

from judgeflow_devkit.emulator.envelope import ApiError
from judgeflow_devkit.emulator.prompt_cache import Breakpoint
from judgeflow_devkit.emulator.tokens import count_tokens

MAX_BREAKPOINTS = 4


class OutputMode(StrEnum):
    TOOL = "tool"
    JSON_SCHEMA = "json_schema"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Criterion:
    """One scored property of the verdict schema; ``nested`` means ``{"score", "rationale"}``."""

    name: str
    scale_min: int
    scale_max: int
    nested: bool = True


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    """A valid request, reduced to what the reply depends on."""

    model: str
    max_tokens: int
    mode: OutputMode
    tool_name: str | None
    criteria: tuple[Criterion, ...]
    judged_text: str
    input_tokens: int
    breakpoints: tuple[Breakpoint, ...]


def parse_request(body: Any) -> JudgeRequest:
    """Validate ``body`` like the real API does; raise :class:`ApiError` (400) on the first fault."""
    if not isinstance(body, dict):
        _invalid("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        _invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        _invalid("max_tokens: Field required")
    if max_tokens < 1:
        _invalid("max_tokens: Input should be greater than or equal to 1")
    messages = _messages(body.get("messages"))
    system = _blocks(body.get("system"), "system", allow_missing=True)
    tools = _tools(body.get("tools"))
    mode, tool_name, schema = _output(body, tools)
    segments = _segments(tools, system, messages)
    return JudgeRequest(
        model=model,
        max_tokens=max_tokens,
        mode=mode,
        tool_name=tool_name,
        criteria=_criteria(schema),
        judged_text=judged_text(messages),
        input_tokens=sum(count_tokens(text, model) for text, _ in segments),
        breakpoints=_breakpoints(model, segments),
    )


def judged_text(messages: list[dict[str, Any]]) -> str:
    """The unescaped text between the outermost ``<response>`` tags of the last user message.

    Without the tags, the whole user text is judged. Only the first ``<response>`` and the last
    ``</response>`` count, so an unescaped closing tag inside the text cannot cut it short.
    """
    user = [m for m in messages if m["role"] == "user"]
    if not user:
        _invalid("messages: at least one user message is required")
    content = user[-1]["content"]
    text = content if isinstance(content, str) else "\n".join(_block_text(b) for b in content)
    start, end = text.find("<response>"), text.rfind("</response>")
    if start >= 0 and end > start:
        text = text[start + len("<response>") : end]
    return html.unescape(text).strip()


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        _invalid("messages: Field required")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, str):
            _blocks(content, f"messages.{i}.content", allow_missing=False)
    return value


def _blocks(value: Any, where: str, *, allow_missing: bool) -> list[dict[str, Any]]:
    """A list of content blocks (a plain string becomes one text block)."""
    if value is None and allow_missing:
        return []
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    if not isinstance(value, list) or not all(isinstance(b, dict) and "type" in b for b in value):
        _invalid(f"{where}: Input should be a string or a list of content blocks")
    for i, block in enumerate(value):
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            _invalid(f"{where}.{i}.text: Field required")
        _ttl(block.get("cache_control"), f"{where}.{i}.cache_control")
    return value


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        _invalid("tools: Input should be a valid list")
    for i, tool in enumerate(value):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            _invalid(f"tools.{i}.name: Field required")
        if tool.get("type", "custom") == "custom" and not isinstance(tool.get("input_schema"), dict):
            _invalid(f"tools.{i}.input_schema: Field required")
        _ttl(tool.get("cache_control"), f"tools.{i}.cache_control")
    return value


def _output(body: dict[str, Any], tools: list[dict[str, Any]]) -> tuple[OutputMode, str | None, Any]:
    """The reply's form: a forced (or first) tool, a JSON-schema text, or plain text."""
    choice = body.get("tool_choice") or {}
    if not isinstance(choice, dict):
        _invalid("tool_choice: Input should be an object")
    if tools and choice.get("type") != "none":
        name = choice.get("name") if choice.get("type") == "tool" else tools[0]["name"]
        tool = next((t for t in tools if t["name"] == name), None)
        if tool is None:
            _invalid(f"tool_choice: tool {name!r} was not found in tools")
        return OutputMode.TOOL, tool["name"], tool.get("input_schema")
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is None:
        return OutputMode.TEXT, None, None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        _invalid("output_config.format: expected {'type': 'json_schema', 'schema': {...}}")
    return OutputMode.JSON_SCHEMA, None, fmt["schema"]


def _criteria(schema: Any) -> tuple[Criterion, ...]:
    """Properties scored as ``{"score": integer, ...}`` objects or as bare integers."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    found: list[Criterion] = []
    for name, prop in (properties or {}).items():
        if not isinstance(prop, dict):
            continue
        inner = prop.get("properties")
        if prop.get("type") == "object" and isinstance(inner, dict) and isinstance(inner.get("score"), dict):
            found.append(_criterion(name, inner["score"], nested=True))
        elif prop.get("type") == "integer":
            found.append(_criterion(name, prop, nested=False))
    return tuple(found)


def _criterion(name: str, score: dict[str, Any], *, nested: bool) -> Criterion:
    low, high = score.get("minimum", 1), score.get("maximum", 5)
    if not isinstance(low, int) or not isinstance(high, int) or high < low:
        _invalid(f"schema: {name}.score needs integer minimum <= maximum, got {low!r}..{high!r}")
    return Criterion(name, low, high, nested)


def _segments(
    tools: list[dict[str, Any]], system: list[dict[str, Any]], messages: list[dict[str, Any]]
) -> list[tuple[str, dict[str, Any] | None]]:
    """Each tool, system block and message block as (text, cache_control), in cache order."""
    out: list[tuple[str, dict[str, Any] | None]] = []
    for tool in tools:
        out.append((_dump({k: v for k, v in tool.items() if k != "cache_control"}), tool.get("cache_control")))
    for block in system:
        out.append((_block_text(block), block.get("cache_control")))
    for message in messages:
        for block in _blocks(message["content"], "messages", allow_missing=False):
            out.append((_block_text(block), block.get("cache_control")))
    return out


def _breakpoints(model: str, segments: list[tuple[str, dict[str, Any] | None]]) -> tuple[Breakpoint, ...]:
    """One breakpoint per ``cache_control`` block: the prefix's hash (with the model) and tokens."""
    digest = hashlib.sha256(model.encode("utf-8"))
    tokens = 0
    found: list[Breakpoint] = []
    for text, cache_control in segments:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        tokens += count_tokens(text, model)
        if cache_control is not None:
            found.append(Breakpoint(digest.copy().hexdigest(), tokens, _ttl(cache_control, "cache_control")))
    if len(found) > MAX_BREAKPOINTS:
        _invalid(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(found)}.")
    return tuple(found)


def _ttl(cache_control: Any, where: str) -> float | None:
    """Validate a ``cache_control`` value; its TTL in seconds, or ``None`` for the default."""
    if cache_control is None:
        return None
    if not isinstance(cache_control, dict) or cache_control.get("type") != "ephemeral":
        _invalid(f"{where}: Input should be {{'type': 'ephemeral'}}")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        _invalid(f"{where}.ttl: Input should be '5m' or '1h'")
    return 3600.0 if ttl == "1h" else None


def _block_text(block: dict[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    content = block.get("content")
    if block.get("type") == "tool_result" and isinstance(content, str):
        return content
    return _dump({k: v for k, v in block.items() if k != "cache_control"})


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _invalid(message: str) -> NoReturn:
    raise ApiError("invalid_request_error", message)
