"""Is a drop global (every segment alike) or local (some segments carry it), and which carry how much?

Read from the report's own ``overall`` rows per segment, so the answer rests on the same windows (a
small segment's pooled days) and numbers the comparison table shows:

- per segment column, each value's *traffic share* is its responses per day in the current window
  (``current_n / days_pooled``) over the column's total, and its *contribution* to the column's
  average change is ``traffic_share * difference``; the contributions add up to the average change;
- a segment's *share of the decline* is its contribution over the sum of the contributions of the
  segments that dropped *for sure* (their 95% interval below zero); when none did, of every negative
  one. Without that, a large segment's daily noise would claim a share of a small segment's real
  drop. A segment that did not drop carries none;
- a column says **global** when the average change is negative and every value dropped by at least
  half of it: the whole product moved, which points at a model, prompt or judge change rather than at
  one kind of question. Otherwise **local**, named by the segments carrying the decline;
- the drop is global when every column says so, else local, told by the column whose biggest carrier
  carries the most beyond its traffic share.

There is no drop to explain (**none**) when no row regressed and all responses did not fall by
``min_drop``; no verdict (**unknown**) when there are no segment columns, or no segment row with a
difference. Pure: numbers in, a :class:`RootCause` out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from judgeflow.quality.stats import OVERALL

if TYPE_CHECKING:
    from judgeflow.quality.regression import MetricComparison

MINUS = "\u2212"
NAMED = 3
"""At most this many carriers are named in the text."""


class DropKind(StrEnum):
    NONE = "none"
    UNKNOWN = "unknown"
    GLOBAL = "global"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class SegmentShare:
    """One segment value's part in a drop: its change, its traffic and the share of the decline it carries."""

    segment: str
    difference: float
    traffic_share: float
    decline_share: float
    days_pooled: int = 1

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class RootCause:
    """The verdict, the column it was read from, and that column's segments, biggest carrier first."""

    kind: DropKind
    metric: str = OVERALL
    column: str | None = None
    shares: tuple[SegmentShare, ...] = ()

    @property
    def text(self) -> str:
        """One sentence for Slack, the report and the view."""
        if self.kind is DropKind.NONE:
            return "no drop to explain"
        if self.kind is DropKind.UNKNOWN:
            return "no segments to tell a global drop from a local one"
        if self.kind is DropKind.GLOBAL:
            low, high = min(s.difference for s in self.shares), max(s.difference for s in self.shares)
            return (
                f"global: every {self.column} segment dropped alike ({_signed(high)} to {_signed(low)}), "
                "as a model, prompt or judge change would make it"
            )
        carriers = [s for s in self.shares if s.decline_share > 0][:NAMED]
        if not carriers:
            return f"local: no {self.column} segment fell on {self.metric} on average; see the regressed rows"
        named = ", ".join(
            f"{s.segment} carries {s.decline_share:.0%} of the decline ({_signed(s.difference)}"
            f"{f' over {s.days_pooled} days' if s.days_pooled > 1 else ''}, {s.traffic_share:.0%} of traffic)"
            for s in carriers
        )
        return f"local: {named}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "metric": self.metric,
            "column": self.column,
            "shares": [s.to_json() for s in self.shares],
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RootCause:
        return cls(
            kind=DropKind(data["kind"]),
            metric=str(data.get("metric", OVERALL)),
            column=data.get("column"),
            shares=tuple(SegmentShare(**s) for s in data.get("shares", ())),
        )


def locate_drop(rows: Sequence[MetricComparison], *, segment_columns: Sequence[str], min_drop: float) -> RootCause:
    """Global, local, none or unknown, from the report's rows (see the module docstring).

    Read on ``overall`` unless only a criterion regressed: then on the first regressed criterion.
    """
    everyone = next((r for r in rows if r.metric == OVERALL and r.segment is None), None)
    overall_fell = everyone is not None and everyone.difference is not None and everyone.difference <= -min_drop
    regressed = [r for r in rows if r.status.is_regression]
    if not regressed and not overall_fell:
        return RootCause(DropKind.NONE)
    metric = OVERALL if overall_fell or any(r.metric == OVERALL for r in regressed) else regressed[0].metric
    verdicts = [v for v in (_column(rows, c, metric) for c in segment_columns) if v is not None]
    if not verdicts:
        return RootCause(DropKind.UNKNOWN, metric)
    local = [v for v in verdicts if v.kind is DropKind.LOCAL]
    if not local:
        return verdicts[0]
    return max(local, key=lambda v: v.shares[0].decline_share - v.shares[0].traffic_share)


def _column(rows: Sequence[MetricComparison], column: str, metric: str) -> RootCause | None:
    mine = [
        r
        for r in rows
        if r.metric == metric
        and r.segment is not None
        and r.segment.startswith(f"{column}=")
        and r.difference is not None
        and r.current_n > 0
    ]
    if not mine:
        return None
    per_day = [r.current_n / max(1, r.days_pooled) for r in mine]
    traffic = [p / sum(per_day) for p in per_day]
    contributions = [t * float(r.difference or 0.0) for t, r in zip(traffic, mine, strict=True)]
    average = sum(contributions)
    sure = [r.ci_high is not None and r.ci_high < 0 for r in mine]
    counted = [c < 0 and (s or not any(sure)) for c, s in zip(contributions, sure, strict=True)]
    decline = sum(c for c, k in zip(contributions, counted, strict=True) if k)
    shares = sorted(
        (
            SegmentShare(
                segment=str(r.segment),
                difference=float(r.difference or 0.0),
                traffic_share=t,
                decline_share=c / decline if decline < 0 and k else 0.0,
                days_pooled=r.days_pooled,
            )
            for r, t, c, k in zip(mine, traffic, contributions, counted, strict=True)
        ),
        key=lambda s: (-s.decline_share, s.segment),
    )
    alike = average < 0 and all(s.difference <= average / 2 for s in shares)
    return RootCause(DropKind.GLOBAL if alike else DropKind.LOCAL, metric, column, tuple(shares))


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", MINUS)


__all__ = ["DropKind", "RootCause", "SegmentShare", "locate_drop"]
