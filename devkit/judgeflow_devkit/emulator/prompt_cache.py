"""Prompt-cache accounting by the real API's rules, so cost and ITPM maths can be tested locally.

A request's cacheable prefixes end at each block that carries ``cache_control`` (in the order
tools, system, messages). A prefix shorter than the model's minimum is never cached. The longest
prefix already cached is *read*; the tokens from there up to the last cacheable breakpoint are
*written* (creation). A hit refreshes the entry's TTL. An entry becomes readable only once the
response that wrote it is sent, so requests fired together at a cold cache all pay creation,
exactly as with the real API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """The end of one cacheable prefix: its hash (model included) and its size in tokens."""

    key: str
    tokens: int
    ttl_s: float | None = None
    """``None`` means the server's default TTL; ``cache_control.ttl == "1h"`` gives 3600."""


class CacheUsage(NamedTuple):
    read: int = 0
    creation: int = 0
    creation_1h: int = 0
    """The part of ``creation`` written with a 1-hour TTL (billed at 2x input, not 1.25x)."""


@dataclass(slots=True)
class _Entry:
    available_at: float
    expires_at: float


class PromptCache:
    """Prefix hash to entry. Times are monotonic seconds passed in by the caller."""

    def __init__(self, default_ttl_s: float) -> None:
        self._default_ttl_s = default_ttl_s
        self._entries: dict[str, _Entry] = {}
        self._calls = 0

    def peek(self, breakpoints: tuple[Breakpoint, ...], *, min_tokens: int, now: float) -> int:
        """Tokens a request arriving ``now`` would read from the cache; changes nothing."""
        return self._longest_hit(_cacheable(breakpoints, min_tokens), now)

    def account(
        self,
        breakpoints: tuple[Breakpoint, ...],
        *,
        min_tokens: int,
        arrived_at: float,
        now: float,
    ) -> CacheUsage:
        """Read and write the cache for a request that arrived at ``arrived_at`` and replies ``now``."""
        self._calls += 1
        if self._calls % 256 == 0:
            self._prune(now)
        cacheable = _cacheable(breakpoints, min_tokens)
        if not cacheable:
            return CacheUsage()
        read = self._longest_hit(cacheable, arrived_at)
        one_hour, below = 0, read
        for bp in cacheable:  # each breakpoint writes the tokens since the previous one, at its own TTL
            if bp.tokens > below:
                one_hour += bp.tokens - below if bp.ttl_s is not None and bp.ttl_s >= 3600 else 0
                below = bp.tokens
        for bp in cacheable:
            ttl = bp.ttl_s if bp.ttl_s is not None else self._default_ttl_s
            entry = self._entries.get(bp.key)
            if bp.tokens <= read:
                if entry is not None:
                    entry.expires_at = max(entry.expires_at, now + ttl)
            elif entry is None or entry.expires_at <= now:
                self._entries[bp.key] = _Entry(available_at=now, expires_at=now + ttl)
        return CacheUsage(read=read, creation=cacheable[-1].tokens - read, creation_1h=one_hour)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _longest_hit(self, cacheable: tuple[Breakpoint, ...], at: float) -> int:
        for bp in reversed(cacheable):
            entry = self._entries.get(bp.key)
            if entry is not None and entry.available_at <= at < entry.expires_at:
                return bp.tokens
        return 0

    def _prune(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]


def _cacheable(breakpoints: tuple[Breakpoint, ...], min_tokens: int) -> tuple[Breakpoint, ...]:
    return tuple(bp for bp in breakpoints if bp.tokens >= min_tokens and bp.tokens > 0)
