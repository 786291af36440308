"""A cheap, deterministic token count: about four characters per token, times the model's factor.

The emulator needs token counts for usage, rate limits and prompt-cache minimums, not a real
tokenizer: what matters is that the same text always costs the same and longer text costs more.
Models whose tokenizer makes more tokens of the same text say so in :data:`TOKENIZER_FACTORS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

TOKENIZER_FACTORS: Mapping[str, float] = MappingProxyType({"claude-haiku-5-5": 1.3})
"""Tokens a model makes of a text relative to Haiku 4.5's (by model-id prefix; others are 1.0).
Haiku 5.5's newer tokenizer makes about 1.3x as many tokens of the same English text."""


def tokenizer_factor(model: str | None) -> float:
    """The factor of ``model`` (the longest matching prefix), 1.0 when unknown or ``None``."""
    if model:
        for name in sorted(TOKENIZER_FACTORS, key=len, reverse=True):
            if model.startswith(name):
                return TOKENIZER_FACTORS[name]
    return 1.0


def count_tokens(text: str, model: str | None = None) -> int:
    """``ceil(len(text) / 4 * factor)``: 0 for an empty string, at least 1 otherwise."""
    factor = tokenizer_factor(model)
    return math.ceil(len(text) / 4) if factor == 1.0 else math.ceil(len(text) / 4 * factor)
