"""A cheap, deterministic token count: about four characters per token.

The emulator needs token counts for usage, rate limits and prompt-cache minimums, not a real
tokenizer: what matters is that the same text always costs the same and longer text costs more.
"""

from __future__ import annotations

import math


def count_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: 0 for an empty string, at least 1 otherwise."""
    return math.ceil(len(text) / 4)
