"""How far a judge agrees with the golden set's human raters, and whether a rubric version may run.

Pure: given the golden set and the judge's scores for it, :func:`evaluate` computes per criterion
the agreement figures (:mod:`judgeflow.quality.agreement`), checks them against the configured
floor, checks the prompt-injection canaries and measures verbosity bias. Judging the set and
storing the result live in :mod:`judgeflow.rubrics.gate` and :mod:`judgeflow.storage.calibrations`.

Canaries are left out of the agreement figures: they test whether the judge can be steered, not
how it rates ordinary answers, and a judge should not earn agreement from them (nor lose it twice).
Verbosity bias is Spearman's rho between a response's length in characters and its overall score,
over the non-canary items, for the judge and, as the yardstick, for the humans: a judge whose rho
is far above the humans' rewards length for its own sake.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from judgeflow.config import CalibrationConfig
from judgeflow.quality.agreement import Agreement, Estimate, agreement, length_correlation
from judgeflow.rubric import Rubric
from judgeflow.rubrics.golden import GoldenSet


@dataclass(frozen=True, slots=True)
class CriterionResult:
    """One criterion's agreement and what of the floor it missed (empty when it passed)."""

    criterion: str
    agreement: Agreement
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class CanaryResult:
    """The judge's scores for one canary; ``obeyed`` when any criterion is above the allowed maximum."""

    item_id: str
    scores: dict[str, int]
    obeyed: bool


@dataclass(frozen=True, slots=True)
class Calibration:
    """One calibration run of a rubric version and model against a golden set."""

    rubric_name: str
    rubric_version: str
    model: str
    golden_set: str
    calibrated_at: dt.datetime
    items: int
    judged: int
    criteria: tuple[CriterionResult, ...]
    canaries: tuple[CanaryResult, ...]
    canary_max_score: int
    length_spearman: float | None
    human_length_spearman: float | None
    unjudged: dict[str, str] = field(default_factory=dict)
    cost_usd: float = 0.0
    endpoint: str = ""
    """The judge API's base URL: the gate accepts a calibration only for the endpoint it was made at."""

    @property
    def canaries_failed(self) -> tuple[CanaryResult, ...]:
        return tuple(c for c in self.canaries if c.obeyed)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.criteria) and not self.canaries_failed

    @property
    def reason(self) -> str:
        """Every failure, each naming the criterion (or canary), the figure, its value and the limit."""
        failures = [f"{c.criterion}: {failure}" for c in self.criteria for failure in c.failures]
        failures += [_canary_failure(c, self.canary_max_score) for c in self.canaries_failed]
        return "; ".join(failures)


def _canary_failure(canary: CanaryResult, max_score: int) -> str:
    if not canary.scores:  # no verdict: it cannot be shown to resist, so it fails
        return f"canary {canary.item_id} got no verdict from the judge (see 'not judged')"
    over = ", ".join(f"{k} {v}" for k, v in canary.scores.items() if v > max_score)
    return f"canary {canary.item_id} obeyed the injection: scored {over} (a canary may score at most {max_score})"


def evaluate(
    golden: GoldenSet,
    judged: dict[str, dict[str, int]],
    *,
    rubric: Rubric,
    config: CalibrationConfig,
    calibrated_at: dt.datetime,
    unjudged: dict[str, str] | None = None,
    cost_usd: float = 0.0,
    endpoint: str = "",
) -> Calibration:
    """The calibration of ``judged`` (item id -> criterion -> the judge's score) against ``golden``.

    Items the judge gave no verdict for are left out of every figure and listed in ``unjudged``; a
    canary without a verdict counts as not caught, since nothing shows the judge resisted it.
    """
    scored = [item for item in golden.items if not item.canary and item.id in judged]
    criteria = []
    for criterion in rubric.criterion_names:
        figures = agreement(
            [item.scores[criterion] for item in scored],
            [judged[item.id][criterion] for item in scored],
            scale_min=rubric.scale.min,
            scale_max=rubric.scale.max,
            resamples=config.bootstrap_resamples,
            seed=config.seed,
        )
        criteria.append(CriterionResult(criterion, figures, _floor_failures(figures, config)))
    limit = canary_limit(config, rubric)
    canaries = tuple(
        CanaryResult(
            item.id,
            dict(judged.get(item.id, {})),
            obeyed=item.id not in judged or any(s > limit for s in judged[item.id].values()),
        )
        for item in golden.canaries
    )
    lengths = [len(item.response) for item in scored]
    return Calibration(
        rubric_name=rubric.name,
        rubric_version=rubric.version_key,
        model=rubric.model,
        golden_set=golden.digest,
        calibrated_at=calibrated_at,
        items=len(golden.items),
        judged=sum(1 for item in golden.items if item.id in judged),
        criteria=tuple(criteria),
        canaries=canaries,
        canary_max_score=limit,
        length_spearman=length_correlation(lengths, [rubric.overall(judged[item.id]) for item in scored]),
        human_length_spearman=length_correlation(lengths, [rubric.overall(item.scores) for item in scored]),
        unjudged=dict(unjudged or {}),
        cost_usd=cost_usd,
        endpoint=endpoint,
    )


def canary_limit(config: CalibrationConfig, rubric: Rubric) -> int:
    """The highest score a canary may get on any criterion: configured, or the scale minimum + 1."""
    return config.canary_max_score if config.canary_max_score is not None else rubric.scale.min + 1


def _floor_failures(figures: Agreement, config: CalibrationConfig) -> tuple[str, ...]:
    checks: list[tuple[str, Estimate, float | None, bool]] = [
        ("kappa", figures.kappa, config.floor.kappa, True),
        ("spearman", figures.spearman, config.floor.spearman, True),
        ("mae", figures.mae, config.max_mae, False),
    ]
    failures = []
    for name, estimate, limit, at_least in checks:
        if limit is None:
            continue
        if estimate.value is None:
            failures.append(f"{name} is undefined ({estimate.reason}), so the limit {limit:.2f} cannot be met")
        elif at_least and estimate.value < limit:
            failures.append(f"{name} {estimate.value:.3f} is below the floor {limit:.2f}")
        elif not at_least and estimate.value > limit:
            failures.append(f"{name} {estimate.value:.3f} is above the maximum {limit:.2f}")
    return tuple(failures)


# --- the printed table --------------------------------------------------------------------------


def format_table(calibration: Calibration, config: CalibrationConfig) -> str:
    """The agreement table ``judgeflow calibrate`` prints and the task logs."""
    floor = _floor_text(config)
    header = f"{'criterion':<14}{'n':>4}  {'kappa [95% CI]':<22}{'spearman [95% CI]':<22}{'MAE [95% CI]':<22}"
    lines = [header + f"{'floor':<26}result"]
    for c in calibration.criteria:
        a = c.agreement
        lines.append(
            f"{c.criterion:<14}{a.n:>4}  {_fmt(a.kappa):<22}{_fmt(a.spearman):<22}{_fmt(a.mae):<22}{floor:<26}"
            + ("pass" if c.passed else "FAIL")
        )
    caught = len(calibration.canaries) - len(calibration.canaries_failed)
    lines.append(
        f"canaries caught: {caught}/{len(calibration.canaries)} (a canary may score at most "
        f"{calibration.canary_max_score} on any criterion)"
    )
    lines.append(
        "length vs overall score (Spearman): judge "
        f"{_num(calibration.length_spearman)}, human raters {_num(calibration.human_length_spearman)}"
    )
    if calibration.unjudged:
        lines.append(
            f"not judged ({len(calibration.unjudged)}): "
            + "; ".join(f"{k}: {v}" for k, v in sorted(calibration.unjudged.items()))
        )
    verdict = "PASSED" if calibration.passed else f"REFUSED: {calibration.reason}"
    lines.append(
        f"rubric {calibration.rubric_name} {calibration.rubric_version}, model {calibration.model} at "
        f"{calibration.endpoint or 'an unrecorded endpoint'}, "
        f"golden set {calibration.golden_set[:12]} ({calibration.judged}/{calibration.items} judged, "
        f"${calibration.cost_usd:.4f}): {verdict}"
    )
    return "\n".join(lines)


def _floor_text(config: CalibrationConfig) -> str:
    parts = []
    if config.floor.kappa is not None:
        parts.append(f"kappa>={config.floor.kappa:g}")
    if config.floor.spearman is not None:
        parts.append(f"rho>={config.floor.spearman:g}")
    if config.max_mae is not None:
        parts.append(f"mae<={config.max_mae:g}")
    return " ".join(parts) or "none"


def _fmt(estimate: Estimate) -> str:
    if estimate.value is None:
        return "n/a"
    if estimate.low is None or estimate.high is None:
        return f"{estimate.value:.2f}"
    return f"{estimate.value:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"
