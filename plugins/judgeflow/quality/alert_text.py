"""The words of the alert lifecycle: which interval a message is about, the reference a regression is
measured against, the reminder of a lasting level shift, and a backfill's one digest.

Pure functions of the plan and plain values, so the texts on-call receives are tested without Slack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judgeflow.quality.alert_state import AlertPlan, OpenRegression

DAY = dt.timedelta(days=1)
MINUS = "\u2212"


def judged_interval(start: dt.datetime, end: dt.datetime) -> str:
    """``2026-11-20`` for a whole UTC day, else ``2026-11-20 06:00 → 2026-11-20 12:00 UTC``."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if end - start == DAY and start == start.replace(hour=0, minute=0, second=0, microsecond=0):
        return f"{start:%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"


def historical_note(newest_end: dt.datetime | None) -> str:
    """Said by every text about a run that is not for the newest interval judged so far."""
    newest = ""
    if newest_end is not None:
        newest = f" (the newest judged so far ends {newest_end.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC)"
    return f"historical: not the latest interval{newest}; on-call is not paged for it"


def accept_command(rubric: str, key: str) -> str:
    return f'`judgeflow alerts accept {rubric} "{key}" --reason "..."`'


def reference_lines(plan: AlertPlan) -> list[str]:
    """For each newly announced regression, the level it is now measured against."""
    return [_reference_line(plan.state[k]) for k in plan.new if k in plan.state and plan.state[k].reference]


def reminder_lines(plan: AlertPlan, *, rubric: str) -> list[str]:
    """A lasting level shift: each key still below the level before it began, then how to accept it."""
    lines, first = [], None
    for key in sorted(plan.reminders, key=lambda k: (k != "overall", k)):
        row = plan.state[key]
        if row.reference is None:
            continue
        first = first or key
        below = -plan.differences.get(key, row.difference)
        lines.append(
            f"{key} still {below:.2f} below the level before {row.down_since:%Y-%m-%d} ({row.reference.level.mean:.2f})"
        )
    if first is None:
        return []
    return [*lines, f"accept a lasting shift as the new normal with {accept_command(rubric, first)}"]


def recovered_lines(plan: AlertPlan) -> list[str]:
    lines = []
    for key in plan.recovered:
        row = plan.closed.get(key)
        if row is None or row.reference is None:
            lines.append(key)
            continue
        now = row.reference.level.mean + plan.differences.get(key, 0.0)
        lines.append(
            f"{key} (at {now:.2f}, back to the level before {row.down_since:%Y-%m-%d}, "
            f"{row.reference.level.mean:.2f}, for {row.back_days} day{'s' if row.back_days != 1 else ''})"
        )
    return lines


def _reference_line(row: OpenRegression) -> str:
    ref = row.reference
    assert ref is not None
    level = ref.level
    return (
        f"{row.key}: measured against {level.mean:.2f} (95% {level.low:.2f} to {level.high:.2f}, n={level.n}, "
        f"{ref.start:%Y-%m-%d} → {ref.end:%Y-%m-%d}) until it recovers"
    )


@dataclass(frozen=True, slots=True)
class Digest:
    """What one backfill found: the days it covered, the regressions in that history, a link."""

    dag_id: str
    rubric: str
    days: Sequence[dt.datetime]
    missing: Sequence[dt.datetime]
    regressions: dict[str, list[dt.datetime]]
    link: str
    first: dt.datetime
    last: dt.datetime


def digest_message(digest: Digest) -> tuple[str, list[dict[str, Any]]]:
    """One message when a backfill's last run ends: historical, so it informs and never pages."""
    span = f"{digest.first:%Y-%m-%d} → {digest.last:%Y-%m-%d}"
    head = f"judgeflow: backfill digest for {digest.rubric}, {span} (historical)"
    covered = f"{len(digest.days)} days judged" + (
        f", {len(digest.missing)} without a run: {', '.join(f'{d:%Y-%m-%d}' for d in digest.missing)}"
        if digest.missing
        else ""
    )
    found = [
        f"• {key}: {len(days)} day{'s' if len(days) != 1 else ''} ({', '.join(f'{d:%m-%d}' for d in days)})"
        for key, days in sorted(digest.regressions.items())
    ] or ["• no regression in that history"]
    text = f"{head}: {covered}; regressions: {len(digest.regressions)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
        _section(f"*Days covered*\n{covered}"),
        _section("*Regressions found in that history*\n" + "\n".join(found)[:2900]),
        _section(f"_{historical_note(None)}: a backfill's runs send this one digest instead of paging._"),
    ]
    if digest.link:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the runs in Airflow"},
                        "url": digest.link,
                        "action_id": "judgeflow_open_backfill",
                    }
                ],
            }
        )
    return text, blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}
