"""Dollar cost of a reply from its ``usage``, at the configured per-million-token prices."""

from __future__ import annotations

from judgeflow.config import ModelPrice
from judgeflow.records import Usage

PER_MILLION = 1_000_000


def cost_usd(usage: Usage, price: ModelPrice, *, batch: bool = False, requests: int = 1) -> float:
    """Input, output, cache-write (5-minute and 1-hour) and cache-read tokens each at their own rate.

    A prompt over the model's long-context threshold (Haiku 5.5: 100K tokens, cached ones included)
    pays the long-context multiple on every rate; batch discount applied last. ``usage`` is one
    reply's; for the sum of ``requests`` replies (an estimate) the threshold is held against the
    mean prompt, since the tier is decided request by request."""
    one_hour = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    dollars = (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + (usage.cache_write_tokens - one_hour) * price.input * price.cache_write_multiplier
        + one_hour * price.input * price.cache_write_1h_multiplier
        + usage.cache_read_tokens * price.input * price.cache_read_multiplier
    ) / PER_MILLION
    if price.long_context_tokens is not None and usage.prompt_tokens > price.long_context_tokens * max(requests, 1):
        dollars *= price.long_context_multiplier
    if batch:
        dollars *= price.batch_discount
    return round(dollars, 8)
