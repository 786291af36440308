"""Dollar cost of a reply from its ``usage``, at the configured per-million-token prices."""

from __future__ import annotations

from judgeflow.config import ModelPrice
from judgeflow.records import Usage

PER_MILLION = 1_000_000


def cost_usd(usage: Usage, price: ModelPrice, *, batch: bool = False) -> float:
    """Input, output, cache-write and cache-read tokens each at their own rate; batch discount applied."""
    dollars = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.input * price.cache_write_multiplier
        + usage.cache_read_tokens * price.input * price.cache_read_multiplier
    ) / PER_MILLION
    if batch:
        dollars *= price.batch_discount
    return round(dollars, 8)
