"""The emulated judge: scores that are a pure function of the judged text.

Tests assert exact scores, so nothing here is random: a criterion's score is a hash of the
criterion name and the text, folded onto the scale with a lean towards its top, the way a
real judge rates mostly decent production answers (the mean on 1..5 is about 3.6). Test data
steers scores with two markers,
``[[quality:low]]`` (every criterion at the scale minimum) and ``[[quality:high]]`` (the maximum),
which is how fixtures build known quality drops. Surrounding whitespace does not count, so how a
prompt lays out the text around its delimiters cannot change a score.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

LOW_MARKER = "[[quality:low]]"
HIGH_MARKER = "[[quality:high]]"


def emulated_scores(response_text: str, criteria: Sequence[str], scale_min: int, scale_max: int) -> dict[str, int]:
    """Score ``response_text`` on every criterion, deterministically.

    Empty or whitespace-only text, or text containing ``[[quality:low]]``, scores ``scale_min``;
    text containing ``[[quality:high]]`` scores ``scale_max``; otherwise each criterion scores
    ``scale_min + floor(width * u ** 0.6)`` with ``u`` in [0, 1) from ``sha256(f"{criterion}\\n{text}")``.
    """
    if scale_max < scale_min:
        raise ValueError(f"scale_max {scale_max} is below scale_min {scale_min}")
    text = response_text.strip()
    if not text or LOW_MARKER in text:
        return dict.fromkeys(criteria, scale_min)
    if HIGH_MARKER in text:
        return dict.fromkeys(criteria, scale_max)
    width = scale_max - scale_min + 1
    return {c: scale_min + _position(f"{c}\n{text}", width) for c in criteria}


def emulated_rationale(criterion: str, score: int) -> str:
    """A short, deterministic reason, so verdicts have the shape a real judge's have."""
    return f"Emulated judge: {criterion} scored {score}."


def _position(text: str, width: int) -> int:
    """Where on a scale of ``width`` steps the text lands: 0 is the bottom, leaning upwards."""
    unit = (int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16) % 1_000_000) / 1_000_000
    return min(width - 1, int(width * unit**SKEW))


#: Below 1, scores lean towards the top of the scale.
SKEW = 0.6
