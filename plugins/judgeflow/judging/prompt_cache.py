"""Will the judge's static prefix be prompt-cached? An estimate made before any money is spent.

Prompt caching bills a repeated prefix at a tenth of the input price, but the API silently skips
caching when the prefix (tools, then system blocks up to the last ``cache_control`` block) is below
the model's minimum: no error, just ``cache_creation_input_tokens == 0`` and full price on every
request. :func:`prefix_report` measures the prefix exactly as :func:`~judgeflow.judging.prompt.build_request`
sends it, so a rubric edit that shrinks it below the minimum shows up in a test, not on the bill.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from judgeflow.judging.prompt import build_request
from judgeflow.records import ResponseItem, Usage
from judgeflow.rubric import Rubric

MIN_CACHEABLE_TOKENS: Mapping[str, int] = MappingProxyType(
    {
        "claude-haiku-4-5": 4096,
        "claude-haiku-5-5": 4096,  # not published when this was written: Haiku 4.5's, checked in use (below)
        "claude-opus-4": 4096,  # Opus 4.5, 4.6 and later 4.x; 4.0 and 4.1 are the exceptions below
        "claude-opus-4-0": 1024,
        "claude-opus-4-20250514": 1024,  # Opus 4.0's dated id
        "claude-opus-4-1": 1024,
        "claude-opus-4-5": 4096,
        "claude-opus-4-6": 4096,
        "claude-sonnet-4": 1024,
        "claude-haiku-3-5": 2048,
        "claude-3-5-haiku": 2048,  # the legacy id spelling of Haiku 3.5
        "claude-3-haiku": 2048,
    }
)
"""Smallest cacheable prefix in tokens, per model-id prefix, from Anthropic's prompt-caching docs.

The longest matching prefix wins, so dated ids (``claude-haiku-4-5-20251001``) and aliases
resolve to their family. Where the docs change, update this table: it is the only copy.
"""

FALLBACK_MIN_CACHEABLE_TOKENS = 1024
"""For a model id the table does not know: the most common minimum, not a guarantee."""

CHARS_PER_TOKEN = 3.5
"""Conservative: real tokenizers give about 3.5 to 4 characters per token for English prose."""

log = logging.getLogger(__name__)

UNCACHED_REPLIES_BEFORE_WARNING = 3
"""Replies in a row with a cacheable prefix and no cache traffic before the task says so."""

_PROBE = ResponseItem(response_id="prefix-probe", question="", context="", response="")


def min_cacheable_tokens(model: str) -> int:
    """The minimum cacheable prefix for ``model``; unknown models get ``FALLBACK_MIN_CACHEABLE_TOKENS``."""
    for prefix in sorted(MIN_CACHEABLE_TOKENS, key=len, reverse=True):
        if model.startswith(prefix):
            return MIN_CACHEABLE_TOKENS[prefix]
    return FALLBACK_MIN_CACHEABLE_TOKENS


def estimate_tokens(text: str, tokenizer_factor: float = 1.0) -> int:
    """An estimate, not a tokenizer: ``ceil(len(text) / 3.5 * factor)``, which errs towards more tokens.

    ``tokenizer_factor`` is the model's tokens for the same text relative to Haiku 4.5's
    (:attr:`judgeflow.config.ModelPrice.tokenizer_factor`). Good enough to tell whether a prefix is
    comfortably above a minimum; for an exact count ask the API's ``count_tokens`` endpoint.
    """
    return math.ceil(len(text) / CHARS_PER_TOKEN * tokenizer_factor)


@dataclass(frozen=True, slots=True)
class PrefixReport:
    """The estimated cacheable prefix of a rubric's requests against its model's minimum."""

    model: str
    prefix_tokens: int
    minimum: int
    qualifies: bool

    def describe(self) -> str:
        """One line for logs and the CLI, e.g. ``cacheable prefix: ~5,824 tokens (...): cached``."""
        head = f"cacheable prefix: ~{self.prefix_tokens:,} tokens (minimum {self.minimum:,} for {self.model})"
        if self.qualifies:
            return f"{head}: cached"
        return f"{head}: below the minimum: every request pays full price for it"


def prefix_report(rubric: Rubric, *, tokenizer_factor: float = 1.0) -> PrefixReport:
    """Estimate the static prefix of every request judged with ``rubric``; pure, no API call.

    The request is built by :func:`build_request` around an empty probe item, so what is measured is
    exactly what is sent: the tools, then the system blocks up to the last one with ``cache_control``
    (the API's cache order). Without any ``cache_control`` block nothing is cached: the prefix is 0.
    """
    params = build_request(rubric, _PROBE, max_response_chars=1, max_output_tokens=1).params
    model = str(params["model"])
    tokens = _cacheable_prefix_tokens(params, tokenizer_factor)
    minimum = min_cacheable_tokens(model)
    return PrefixReport(model=model, prefix_tokens=tokens, minimum=minimum, qualifies=tokens >= minimum)


def _cacheable_prefix_tokens(params: Mapping[str, Any], tokenizer_factor: float) -> int:
    """Estimated tokens from the start of the request to its last ``cache_control`` tool or system block."""
    system = params.get("system") or []
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    segments = [(json.dumps(tool, ensure_ascii=False), tool.get("cache_control")) for tool in params.get("tools") or []]
    segments += [(str(block.get("text", "")), block.get("cache_control")) for block in system]
    total = prefix = 0
    for text, cache_control in segments:
        total += estimate_tokens(text, tokenizer_factor)
        if cache_control is not None:
            prefix = total
    return prefix


def marks_cacheable(params: Mapping[str, Any]) -> bool:
    """Whether the request asks for a prompt-cache breakpoint in its tools or system blocks."""
    system = params.get("system") or []
    blocks = [*(params.get("tools") or []), *([] if isinstance(system, str) else system)]
    return any(isinstance(b, Mapping) and b.get("cache_control") is not None for b in blocks)


class CacheMinimumWatch:
    """Learns the model's cache minimum from usage, where the table above can only guess.

    A request whose prefix is marked cacheable writes the cache (``cache_creation_input_tokens``)
    or reads it; when replies keep showing neither, the API skipped caching because the prefix is
    below the model's minimum (the API says nothing else). One per task: it logs once, with the
    estimated prefix, so a model with a larger minimum than assumed (Haiku 5.5's is not published)
    shows up in the task log instead of only on the bill. Realtime calls only: inside a Message
    Batch the API caches on a best-effort basis, so a batch result without cache traffic proves
    nothing about the minimum."""

    def __init__(self, model: str, *, prefix_tokens: int | None = None) -> None:
        self.model = model
        self.prefix_tokens = prefix_tokens
        self.uncached_in_a_row = 0
        self.cached_seen = False
        self.warned = False

    def observe(self, usage: Usage, *, cacheable: bool = True) -> None:
        """One reply's usage; ``cacheable`` says whether its request marked a prefix cacheable."""
        if self.cached_seen or self.warned or not cacheable:
            return
        if usage.cache_write_tokens or usage.cache_read_tokens:
            self.cached_seen = True
            return
        self.uncached_in_a_row += 1
        if self.uncached_in_a_row >= UNCACHED_REPLIES_BEFORE_WARNING:
            self.warned = True
            size = f"~{self.prefix_tokens:,} tokens" if self.prefix_tokens else "the prefix"
            log.warning(
                "prompt cache: %d replies from %s wrote and read no cache for a prefix marked cacheable: "
                "%s is below the model's minimum cacheable prefix (assumed %s), so every request pays full "
                "price for it; lengthen the rubric's calibrated examples or accept the cost",
                self.uncached_in_a_row,
                self.model,
                size,
                f"{min_cacheable_tokens(self.model):,}",
            )
