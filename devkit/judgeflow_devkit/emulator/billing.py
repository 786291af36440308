"""What the emulated account is billed: Anthropic's published prices applied to each reply's usage.

This is the emulator's own copy of the price list, kept apart from judgeflow's
(:data:`judgeflow.config.DEFAULT_PRICES`) on purpose: the emulator plays the vendor's invoice, so a
test can hold judgeflow's estimates and its recorded ``cost_usd`` against a bill judgeflow did not
compute. Message Batches requests are billed at half price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from judgeflow_devkit.emulator.prompt_cache import CacheUsage


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    long_context_tokens: int | None = None
    long_context_multiplier: float = 1.0


PRICES: Mapping[str, Price] = MappingProxyType(
    {
        "claude-haiku-4-5": Price(1.00, 5.00, 1.25, 2.00, 0.10),
        "claude-haiku-5-5": Price(
            0.10, 0.50, 0.125, 0.20, 0.01, long_context_tokens=100_000, long_context_multiplier=5.0
        ),
        "claude-sonnet-4-5": Price(3.00, 15.00, 3.75, 6.00, 0.30),
        "claude-opus-4-5": Price(5.00, 25.00, 6.25, 10.00, 0.50),
    }
)
"""By model-id prefix, the longest match wins; a model not listed is billed at Haiku 4.5's."""

BATCH_DISCOUNT = 0.5


def price_of(model: str) -> Price:
    for name in sorted(PRICES, key=len, reverse=True):
        if model.startswith(name):
            return PRICES[name]
    return PRICES["claude-haiku-4-5"]


def bill_usd(model: str, *, input_tokens: int, output_tokens: int, cache: CacheUsage, batch: bool) -> float:
    """The dollars one reply costs: every token class at its own rate, 5x over the long-context line
    (prompt = uncached input + cache writes + cache reads), half for a batch request."""
    price = price_of(model)
    dollars = (
        input_tokens * price.input
        + output_tokens * price.output
        + (cache.creation - cache.creation_1h) * price.cache_write_5m
        + cache.creation_1h * price.cache_write_1h
        + cache.read * price.cache_read
    ) / 1_000_000
    prompt = input_tokens + cache.creation + cache.read
    if price.long_context_tokens is not None and prompt > price.long_context_tokens:
        dollars *= price.long_context_multiplier
    return dollars * (BATCH_DISCOUNT if batch else 1.0)
