"""What one step of ``judgeflow deploy init`` did, and the report of a whole run.

A run is idempotent: its second run must report no change. So every step says whether it changed
something (``created``, ``updated``) or found it as wanted (``unchanged``), and anything that keeps
the deployment from judging for real is a ``problem``, which makes the command exit 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # not asked for (no Slack webhook, no Redis URL)
    WAITING = "waiting"  # needs the operator first (the source table is not loaded yet); init again later
    WARNING = "warning"  # works, but not as it should (a superuser warehouse login kept from before)
    PROBLEM = "problem"  # the deployment cannot judge for real until this is fixed

    @property
    def is_change(self) -> bool:
        return self in (Outcome.CREATED, Outcome.UPDATED)


@dataclass(frozen=True, slots=True)
class Step:
    """One thing init looked at: ``subject`` (``connection anthropic_default``), what it found or did."""

    subject: str
    outcome: Outcome
    detail: str = ""

    def line(self) -> str:
        return f"{self.outcome.value:<10} {self.subject}" + (f": {self.detail}" if self.detail else "")


@dataclass
class InitReport:
    """The steps of one run, in order."""

    steps: list[Step] = field(default_factory=list)

    def add(self, subject: str, outcome: Outcome, detail: str = "") -> Step:
        step = Step(subject, outcome, detail)
        self.steps.append(step)
        return step

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.outcome.is_change]

    @property
    def problems(self) -> list[Step]:
        return [s for s in self.steps if s.outcome is Outcome.PROBLEM]

    def summary(self) -> str:
        """The last line the command prints; the stack test reads it (keep its shape)."""
        unchanged = sum(s.outcome is Outcome.UNCHANGED for s in self.steps)
        return (
            f"judgeflow deploy init: {len(self.changes)} changed, {unchanged} unchanged, {len(self.problems)} problems"
        )

    def lines(self) -> Iterator[str]:
        for step in self.steps:
            yield step.line()
        yield self.summary()
