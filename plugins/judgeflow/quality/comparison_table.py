"""The comparisons table, drawn the same way by the per-run report and the UI view's Segments page.

One row per :class:`~judgeflow.quality.regression.MetricComparison`: sample sizes, means, the difference
with its 95% CI, the smallest drop the row could detect at its n, the days a small segment pooled,
the q value and the status (also the row's CSS class, so both pages colour
regressions alike). Kept apart from both callers so the report does not import the view, nor the
view the report's pandas code. Every text from the data is escaped here, and segment values are
redacted (a segment column may hold what users typed).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from judgeflow.quality.regression import MetricComparison

HEADERS = (
    "comparison",
    "baseline n",
    "baseline mean",
    "current n",
    "current mean",
    "difference [95% CI]",
    "detects a drop of",
    "days pooled",
    "q",
    "status",
)
MISSING = "\u2013"  # an en dash: a number that could not be computed (too few samples, no baseline)


def num(value: float | None, spec: str = ".2f") -> str:
    return MISSING if value is None else format(value, spec)


def difference(row: MetricComparison) -> str:
    """The difference with its 95% CI when there is one: ``-0.42 [-0.61, -0.22]``."""
    text = num(row.difference, "+.2f")
    if row.ci_low is not None and row.ci_high is not None:
        text += f" [{row.ci_low:+.2f}, {row.ci_high:+.2f}]"
    return text


def comparison_table(rows: Sequence[MetricComparison], *, table_id: str | None = None) -> str:
    """The table's HTML; callers say what an empty list means on their page before calling."""
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEADERS)
    body = []
    for r in rows:
        cells = [
            f'<td class="text">{e(r.shown_label)}</td>',
            *(
                f"<td>{e(value)}</td>"
                for value in (
                    str(r.baseline_n),
                    num(r.baseline_mean),
                    str(r.current_n),
                    num(r.current_mean),
                    difference(r),
                    num(r.mde),
                    str(r.days_pooled),
                    num(r.q_value, ".3g"),
                    r.status.value,
                )
            ),
        ]
        body.append(f'<tr class="{e(r.status.value)}">' + "".join(cells) + "</tr>")
    opening = "<table>" if table_id is None else f'<table id="{e(table_id)}">'
    return opening + "\n<tr>" + head + "</tr>\n" + "\n".join(body) + "\n</table>"


__all__ = ["HEADERS", "MISSING", "comparison_table", "difference", "num"]
