"""Tell on-call when quality drops: decide, build a Slack Block Kit message, send it.

Deciding and building are pure functions of an :class:`AlertContext`, so the message can be tested
(and previewed) without Slack. Sending goes through the ``slackwebhook`` Airflow connection and
**never raises**: a missing connection or Slack being down is logged and reported as ``False``, because
a failed alert must not fail (and retry) a scoring run that already succeeded.

Airflow's Slack provider and ``slack_sdk`` are imported inside :func:`send_alert`, so importing this
module for its pure functions costs nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any, NamedTuple
from urllib.parse import quote

from judgeflow.quality.alert_state import AlertPlan, regression_key
from judgeflow.quality.alert_text import (
    historical_note,
    judged_interval,
    recovered_lines,
    reference_lines,
    reminder_lines,
)
from judgeflow.quality.redaction import redact
from judgeflow.quality.regression import MetricComparison, RegressionReport

log = logging.getLogger(__name__)

JUDGE_ERROR_RATE_LIMIT = 0.05
"""Above this share of extracted responses without a score, the judge itself is unhealthy."""

HEADER_MAX_CHARS = 150
SECTION_MAX_CHARS = 3000
FIELD_MAX_CHARS = 2000
URL_MAX_CHARS = 3000
ELLIPSIS = "…"
MINUS = "\u2212"
"""Differences are signed with a typographic minus: as wide as ``+``, never read as a hyphen."""


@dataclass(frozen=True, slots=True)
class SegmentExample:
    """A segment that pulls the day's average down, and its lowest-scoring response."""

    segment: str
    n: int
    mean: float
    pull: float
    response_id: str
    score: float
    rationale: str


@dataclass(frozen=True, slots=True)
class AlertContext:
    """Everything the alert needs to know about one run, gathered by the pipeline.

    ``extracted`` responses were read, ``scored`` got a score (``from_cache`` of them without a
    judge call), ``errors`` got none. ``rolling_average`` is the mean overall score of the last
    days (``None`` when there were no scores) over ``rolling_count`` scores; ``threshold`` is the
    lowest acceptable rolling average, on the rubric's scale.
    """

    dag_id: str
    run_id: str
    rubric_name: str
    rubric_version: str
    interval_start: dt.datetime
    interval_end: dt.datetime
    run_url: str
    extracted: int
    scored: int
    from_cache: int
    errors: int
    cost_usd: float
    rolling_average: float | None
    rolling_count: int
    threshold: float
    report: RegressionReport
    left_for_budget: int = 0
    plan: AlertPlan | None = None
    """What on-call already knows; without it every regression and low average is announced."""
    where: tuple[SegmentExample, ...] = ()
    """The segments pulling the average down most, each with its worst response."""
    malformed: int = 0
    """Responses whose verdict never validated (parse failures), part of ``errors``."""
    max_error_rate: float = JUDGE_ERROR_RATE_LIMIT
    budget_usd: float | None = None
    report_url: str = ""
    """The run's HTML report (distributions and per-segment differences), linked from the message."""
    sample_rate: float = 1.0
    """The suite's sampling rate: every n above counts judged responses, a sample when this is under 1."""
    historical: bool = False
    """The run is not for the newest interval judged so far (a rerun, a clear, a backfill): never pages."""
    newest_end: dt.datetime | None = None
    """The end of the newest interval judged so far, named by a historical text."""

    @property
    def sampled(self) -> str:
        """``", sample rate 10%"`` when the suite judges a sample, else nothing."""
        return f", sample rate {self.sample_rate:.0%}" if self.sample_rate < 1 else ""

    @property
    def judge_errors(self) -> int:
        """Errors that say something about the judge: responses held back by the budget are not."""
        return max(0, self.errors - self.left_for_budget)

    @property
    def error_rate(self) -> float:
        """Share of extracted responses the judge failed on; 1.0 if errors came with nothing extracted."""
        if self.extracted <= 0:
            return 1.0 if self.judge_errors > 0 else 0.0
        return self.judge_errors / self.extracted


class AlertDecision(NamedTuple):
    """Whether to page on-call, and the human-readable reasons (empty when not)."""

    should_alert: bool
    reasons: tuple[str, ...]


def decide_alert(ctx: AlertContext) -> AlertDecision:
    """Alert on a low rolling average, any significant regression, or an unhealthy judge.

    The three are independent: each one that holds adds its reason, so the message says all of them.
    """
    reasons: list[str] = []
    announce = None if ctx.plan is None else ctx.plan.announced
    if _below_threshold(ctx) and (announce is None or ROLLING_AVERAGE_KEY in announce):
        reasons.append(
            f"rolling average {ctx.rolling_average:.2f} is below the threshold {ctx.threshold:.2f} "
            f"(n={ctx.rolling_count}{ctx.sampled})"
        )
    regressed = [k for k in _regression_keys(ctx) if announce is None or k in announce]
    if regressed:
        worse = set(ctx.plan.worsening) if ctx.plan else set()
        reasons.append(
            "significant regression in "
            + ", ".join(f"{k} (worse since the last alert)" if k in worse else k for k in regressed)
        )
    if ctx.plan is not None:
        reasons.extend(reference_lines(ctx.plan))
        reasons.extend(reminder_lines(ctx.plan, rubric=ctx.rubric_name))
        if ctx.plan.recovered:
            reasons.append("recovered: " + ", ".join(recovered_lines(ctx.plan)))
    if _judge_unhealthy(ctx):
        reasons.append(
            f"judge errors: {ctx.judge_errors} of {ctx.extracted} responses ({ctx.error_rate:.1%}) "
            f"above {ctx.max_error_rate:.0%}"
        )
    if ctx.left_for_budget > 0:
        reasons.append(f"budget cap reached: {ctx.left_for_budget} responses left unscored for the next run")
    if ctx.historical and reasons:
        reasons.insert(0, historical_note(ctx.newest_end))
    return AlertDecision(should_alert=bool(reasons), reasons=tuple(reasons))


def build_alert_blocks(ctx: AlertContext, decision: AlertDecision) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text (notifications, screen readers) and the Block Kit blocks for on-call.

    Every text is cut to Slack's limits, so a long rubric name or many regressions cannot get the
    message refused.
    """
    headline = _headline(ctx)
    text = truncate(f"{headline}: {'; '.join(decision.reasons)}" if decision.reasons else headline, SECTION_MAX_CHARS)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(headline, HEADER_MAX_CHARS)}},
    ]
    if decision.reasons:
        why = "\n".join(f"• {_escape(r)}" for r in decision.reasons)
        blocks.append(_section(truncate(f"*Why*\n{why}", SECTION_MAX_CHARS)))
    blocks.append({"type": "section", "fields": _number_fields(ctx)})
    if ctx.report.regressions:
        lines = [f"• {_escape(format_regression_line(c))}" for c in ctx.report.regressions]
        blocks.append(_section(truncate_lines("*Regressed metrics* (baseline → current)", lines)))
    cause = ctx.report.root_cause
    if cause is not None and cause.kind.value in ("global", "local") and ctx.report.regressions:
        blocks.append(_section(truncate(f"*Root cause*\n{_escape(redact(cause.text))}", SECTION_MAX_CHARS)))
    if ctx.where and ctx.report.regressions:
        lines = [_where_line(e) for e in ctx.where[:3]]
        blocks.append(_section(truncate_lines("*Where it dropped*", lines)))
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate(_run_line(ctx), SECTION_MAX_CHARS)}],
        }
    )
    buttons = [
        {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url, "action_id": action}
        for label, url, action in (
            ("Open the run in Airflow", ctx.run_url, "judgeflow_open_run"),
            ("Open the report", ctx.report_url, "judgeflow_open_report"),
        )
        if 0 < len(url) <= URL_MAX_CHARS
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return text, blocks


def _where_line(e: SegmentExample) -> str:
    rationale = _escape(truncate(redact(e.rationale), 200))
    return (
        f"• {_escape(redact(e.segment))}: mean {e.mean:.2f} over {e.n}, pulls the average by {_signed(e.pull)}; "
        f"worst #{_escape(str(e.response_id))} scored {e.score:.1f}: _{rationale}_"
    )


def format_regression_line(c: MetricComparison) -> str:
    """``accuracy: 4.10 → 3.20 (-0.90), p=0.001, n=120 vs 140``: baseline first, then current.

    The difference is signed with a typographic :data:`MINUS`.
    """
    return (
        f"{c.shown_label}: {_num(c.baseline_mean)} → {_num(c.current_mean)} ({_signed(c.difference)}), "
        f"{_p(c.p_value)}, n={c.baseline_n} vs {c.current_n}{_power(c)}"
    )


def _power(c: MetricComparison) -> str:
    """A segment row's pooled days and the smallest drop it could detect: ``, over 3 days, detects ≥0.58``."""
    if c.segment is None:
        return ""
    pooled = f", over {c.days_pooled} days" if c.days_pooled > 1 else ""
    return pooled + ("" if c.mde is None else f", detects ≥{c.mde:.2f}")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def truncate_lines(title: str, lines: list[str], limit: int = SECTION_MAX_CHARS) -> str:
    """``title`` and as many whole ``lines`` as fit in ``limit``, then how many were left out."""
    kept = [title]
    for i, line in enumerate(lines):
        more = f"{ELLIPSIS} and {len(lines) - i} more"
        if len("\n".join([*kept, line])) + (len(more) + 1 if i < len(lines) - 1 else 0) > limit:
            kept.append(more)
            break
        kept.append(line)
    return truncate("\n".join(kept), limit)


def airflow_run_url(base_url: str, *, dag_id: str, run_id: str) -> str:
    """The Airflow 3 UI page of one DAG run (``{base}/dags/{dag_id}/runs/{run_id}``)."""
    return f"{base_url.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def send_alert(*, conn_id: str, text: str, blocks: list[dict[str, Any]], timeout: int | None = None) -> bool:
    """Post the message to the Slack incoming webhook of connection ``conn_id``; ``True`` if Slack took it.

    Never raises: an unknown connection is a warning (alerts are optional in dev), a refused or
    failed request an error in the log. ``timeout`` (seconds) overrides the connection's ``timeout``
    extra; without either, slack_sdk waits 30 s.
    """
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook
    from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException
    from slack_sdk.errors import SlackClientError

    try:
        SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=timeout).send(text=text, blocks=blocks)
    except AirflowNotFoundException:
        log.warning("Slack connection %s not configured; alert not sent", conn_id)
        return False
    except (AirflowException, SlackClientError, OSError, HTTPException, ValueError) as exc:
        # AirflowException: Slack answered non-200; OSError covers timeouts and refused connections.
        log.error("Slack alert via connection %s failed: %s: %s", conn_id, type(exc).__name__, exc)
        return False
    except Exception:
        log.exception("Slack alert via connection %s failed unexpectedly; not retried", conn_id)
        return False
    log.info("Slack alert sent via connection %s", conn_id)
    return True


ROLLING_AVERAGE_KEY = "rolling average"


def _regression_keys(ctx: AlertContext) -> list[str]:
    return [regression_key(c.metric, c.segment) for c in ctx.report.regressions]


def _below_threshold(ctx: AlertContext) -> bool:
    return ctx.rolling_average is not None and ctx.rolling_average < ctx.threshold


def _judge_unhealthy(ctx: AlertContext) -> bool:
    return ctx.judge_errors > 0 and ctx.error_rate > ctx.max_error_rate


def _headline(ctx: AlertContext) -> str:
    """What happened, to which rubric, for which judged interval (and whether that is history)."""
    day = judged_interval(ctx.interval_start, ctx.interval_end)
    return f"{_what(ctx)}, {day}" + (" (historical)" if ctx.historical else "")


def _what(ctx: AlertContext) -> str:
    rubric = f"{ctx.rubric_name} (v{ctx.rubric_version})"
    announce = None if ctx.plan is None else ctx.plan.announced
    if (_below_threshold(ctx) or ctx.report.has_regression) and (announce is None or announce):
        return f"judgeflow: quality drop in {rubric}"
    if _judge_unhealthy(ctx):
        return f"judgeflow: judge errors in {rubric}"
    if ctx.left_for_budget > 0:
        return f"judgeflow: budget reached in {rubric}"
    if ctx.plan is not None and ctx.plan.reminders:
        return f"judgeflow: {rubric} still down"
    if ctx.plan is not None and ctx.plan.recovered:
        return f"judgeflow: {rubric} recovered"
    return f"judgeflow: {rubric} looks fine"


def _number_fields(ctx: AlertContext) -> list[dict[str, Any]]:
    rolling = (
        f"{ctx.rolling_average:.2f} vs threshold {ctx.threshold:.2f} (n={ctx.rolling_count}{ctx.sampled})"
        if ctx.rolling_average is not None
        else f"no scores (threshold {ctx.threshold:.2f})"
    )
    fields = {
        "Rolling average": rolling,
        "Scored": f"{ctx.scored} of {ctx.extracted} extracted ({ctx.from_cache} from cache)",
        "Judge errors": f"{ctx.judge_errors} ({ctx.error_rate:.1%}), {ctx.malformed} unparseable verdicts",
        "Coverage": f"{ctx.scored / ctx.extracted:.1%} scored" if ctx.extracted else "nothing extracted",
        "Left for budget": str(ctx.left_for_budget),
        "Cost": f"${ctx.cost_usd:,.2f}" + (f" of ${ctx.budget_usd:,.2f} budget" if ctx.budget_usd else ""),
    }
    return [
        {"type": "mrkdwn", "text": truncate(f"*{name}*\n{_escape(value)}", FIELD_MAX_CHARS)}
        for name, value in fields.items()
    ]


def _run_line(ctx: AlertContext) -> str:
    interval = f"{_when(ctx.interval_start)} → {_when(ctx.interval_end)}"
    return _escape(f"dag {ctx.dag_id} · run {ctx.run_id} · interval {interval}")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _escape(text: str) -> str:
    """Slack mrkdwn control characters, as https://api.slack.com/reference/surfaces/formatting asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}".replace("-", MINUS)


def _p(value: float | None) -> str:
    if value is None:
        return "p=n/a"
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


__all__ = [
    "AlertContext",
    "AlertDecision",
    "airflow_run_url",
    "build_alert_blocks",
    "decide_alert",
    "format_regression_line",
    "send_alert",
    "truncate",
]
