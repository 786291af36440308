"""Judge a golden set, decide whether a rubric version may run, and notice a drifting judge.

The golden set is judged by the scoring engine the score tasks use (same prompt, client, retries,
rate limiter and verdict validation) with two differences that matter:

- the verdict cache is never read or written: a calibration must reach the judge, or re-judging
  the same frozen set with the same rubric and model would read last week's verdicts back and
  could never show drift;
- results go to memory, not to ``judge_scores``: golden items are not rows of the source table.

The gate (:func:`gate`) judges when this rubric version and model have no calibration against this
golden set yet, or the latest is older than ``calibration.every_days``. Otherwise it reuses the
latest: a passed one lets the run go on; a refused one refuses again without paying for a
re-judge (``judgeflow calibrate`` calibrates on demand, and its result is then the latest).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from judgeflow.config import Settings
from judgeflow.errors import ConfigError, JudgeflowError
from judgeflow.judging.verdict_cache import NullVerdictCache
from judgeflow.records import ErrorRecord, ScoreRecord
from judgeflow.rubric import Rubric
from judgeflow.rubrics.calibration import Calibration, evaluate, format_table
from judgeflow.rubrics.golden import GoldenSet, golden_path, load_golden_set
from judgeflow.storage.calibrations import CalibrationStore

log = logging.getLogger(__name__)


class JudgeStopped(JudgeflowError):
    """The judge API refused the calibration (bad key, billing, a 400 every request gets)."""


class GateAction(StrEnum):
    NO_GOLDEN_SET = "no_golden_set"
    FRESH = "fresh"
    CALIBRATED = "calibrated"


@dataclass(frozen=True, slots=True)
class Drift:
    """A criterion whose kappa fell more than the tolerance below the first calibration's."""

    criterion: str
    first: float
    now: float


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """What the gate did; ``refusal`` is set when the rubric version must not run."""

    action: GateAction
    message: str
    refusal: str | None = None
    calibration: Calibration | None = None
    drift: tuple[Drift, ...] = ()
    first_calibrated_at: dt.datetime | None = None


class _MemorySink:
    """Keeps the golden set's verdicts in memory: they never go to ``judge_scores``."""

    def __init__(self) -> None:
        self.scores: dict[str, dict[str, int]] = {}
        self.errors: dict[str, str] = {}

    def write(self, scores: Sequence[ScoreRecord], errors: Sequence[ErrorRecord]) -> None:
        for s in scores:
            self.scores[str(s.response_id)] = {name: c.score for name, c in s.criteria.items()}
        for e in errors:
            self.errors[str(e.response_id)] = f"{e.kind}: {e.reason}"


async def judge_golden_set(
    golden: GoldenSet, *, settings: Settings, rubric: Rubric
) -> tuple[dict[str, dict[str, int]], dict[str, str], float]:
    """The judge's scores per item id, the items it gave no verdict for (with why), and the cost.

    Raises :class:`JudgeStopped` when the API refused the run, so a bad key is not mistaken for a
    judge that disagrees with everyone."""
    from judgeflow.judging.session import judge_stream

    sink = _MemorySink()
    totals = await judge_stream(
        [[item.as_response() for item in golden.items]],
        settings=settings,
        rubric=rubric,
        cache=NullVerdictCache("calibration never reads cached verdicts: a re-judge must reach the judge"),
        sink=sink,
        dag_run_id=f"calibration/{rubric.name}/{rubric.version_key}",
        budget_caps=[],
    )
    if totals.stopped:
        raise JudgeStopped(f"judge API refused the calibration: {totals.stopped}")
    return sink.scores, sink.errors, totals.cost_usd


async def calibrate(
    golden: GoldenSet,
    *,
    settings: Settings,
    rubric: Rubric,
    store: CalibrationStore,
    endpoint: str,
    now: dt.datetime,
) -> Calibration:
    """Judge the golden set at ``endpoint`` (the judge connection's base URL), evaluate it and append
    it to the store, with the endpoint, so the gate never mistakes it for another endpoint's."""
    scores, errors, cost = await judge_golden_set(golden, settings=settings, rubric=rubric)
    calibration = evaluate(
        golden,
        scores,
        rubric=rubric,
        config=settings.calibration,
        calibrated_at=now,
        unjudged=errors,
        cost_usd=cost,
        endpoint=endpoint,
    )
    store.record(calibration)
    return calibration


async def gate(
    settings: Settings, rubric: Rubric, store: CalibrationStore, *, endpoint: str, now: dt.datetime
) -> GateOutcome:
    """Calibrate if due, and say whether this rubric version may score (see the module docstring).

    Only calibrations judged at ``endpoint`` count: one the local emulator made never lets a real
    endpoint score. ``now`` is the wall clock: calibration checks the judge as it is today,
    whatever day a run (or a backfill) is scoring."""
    config = settings.calibration
    golden = load_golden_set(config.golden_dir, rubric)
    if golden is None:
        where = golden_path(config.golden_dir, rubric.name)
        if config.required:
            raise ConfigError(f"calibration.required is true but rubric {rubric.name!r} has no golden set at {where}")
        return GateOutcome(
            GateAction.NO_GOLDEN_SET, f"rubric {rubric.name!r} has no golden set at {where}: not calibrated"
        )
    store.ensure_schema()
    key = {
        "rubric_name": rubric.name,
        "rubric_version": rubric.version_key,
        "model": rubric.model,
        "golden_set": golden.digest,
        "endpoint": endpoint,
    }
    latest = store.latest_run(**key)
    if latest is not None and now - latest.calibrated_at < dt.timedelta(days=config.every_days):
        state = "passed" if latest.passed else "was refused"
        message = (
            f"rubric {rubric.name} {rubric.version_key} with {rubric.model} at {endpoint} was calibrated at "
            f"{latest.calibrated_at:%Y-%m-%d %H:%M} UTC (within {config.every_days:g} days) and {state}: "
            "not judging again"
        )
        refusal = None if latest.passed else f"the latest calibration refused this rubric version: {latest.reason}"
        return GateOutcome(GateAction.FRESH, message, refusal=refusal)
    first = store.first_kappas(**key)
    calibration = await calibrate(golden, settings=settings, rubric=rubric, store=store, endpoint=endpoint, now=now)
    drift = find_drift(first[1] if first else {}, calibration, tolerance=config.drift_tolerance)
    return GateOutcome(
        GateAction.CALIBRATED,
        format_table(calibration, config),
        refusal=None if calibration.passed else f"calibration refused this rubric version: {calibration.reason}",
        calibration=calibration,
        drift=drift,
        first_calibrated_at=first[0] if first else None,
    )


def find_drift(first: dict[str, float | None], calibration: Calibration, *, tolerance: float) -> tuple[Drift, ...]:
    """Criteria whose kappa fell by more than ``tolerance`` below the first calibration's."""
    drifts = []
    for result in calibration.criteria:
        before, now = first.get(result.criterion), result.agreement.kappa.value
        if before is not None and now is not None and before - now > tolerance:
            drifts.append(Drift(result.criterion, before, now))
    return tuple(drifts)


def drift_message(outcome: GateOutcome, *, tolerance: float) -> tuple[str, list[dict[str, object]]]:
    """The Slack text and Block Kit blocks telling on-call that the judge drifted."""
    calibration = outcome.calibration
    assert calibration is not None
    since = f"{outcome.first_calibrated_at:%Y-%m-%d}" if outcome.first_calibrated_at else "the first calibration"
    lines = [f"• *{d.criterion}*: kappa {d.first:.2f} → {d.now:.2f} ({d.now - d.first:+.2f})" for d in outcome.drift]
    text = (
        f"judgeflow: the judge drifted on rubric {calibration.rubric_name} {calibration.rubric_version} "
        f"({calibration.model}): agreement with the golden set fell by more than {tolerance:g} since {since}"
    )
    detail = (
        "The same frozen golden set, judged again with the same rubric version and model, agrees less with "
        "the human raters than it did. Scoring goes on; check whether the model behind the name changed.\n"
        + "\n".join(lines)
    )
    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Judge drift on the golden set"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "section", "text": {"type": "mrkdwn", "text": detail}},
    ]
    return text, blocks
