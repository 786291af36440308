"""Move a rubric to another judge model, gated: price it, calibrate it, shadow it, compare, recommend.

``judgeflow migrate-model --rubric R --to claude-haiku-5-5 --days 7`` (:mod:`judgeflow.rubrics.commands`)
runs these steps in order and stops at the first that says no:

1. **dry-run cost**: the last ``days`` days staged as a run stages them and priced with the new
   model's prices and tokenizer (:mod:`judgeflow.rubrics.estimate`), plus the golden set the gate
   judges and any of those days the current model has not scored yet; refused over
   ``budget.max_backfill_cost_usd``, like a backfill;
2. **calibration gate**: the new model judges the rubric's golden set (:func:`judgeflow.rubrics.gate.gate`);
   a refusal ends the migration before the shadow run spends anything;
3. **shadow run**: both models judge the same days. Changing ``model`` makes a new rubric version,
   so the new model's verdicts are stored as that version's scores in ``judge_scores`` beside the
   current ones, never replacing them; the daily DAG keeps scoring with the current model;
4. **comparison**: per criterion the mean shift, Spearman and weighted kappa between the models,
   and the responses that moved most (:mod:`judgeflow.rubrics.versions`, :mod:`judgeflow.quality.agreement`);
5. **recommendation**: switch only when the gate passed. The switch is the one-line rubric change
   ``model: <new>``: printed, and written to the rubric file with ``--apply`` (never when the gate
   refused). The daily DAG then scores the new version from its next run on.

Idempotent: the shadow run stages only responses a version has not scored yet, and the gate reuses
a fresh calibration, so a rerun after a failure pays for what is missing and nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from judgeflow.config import Settings
from judgeflow.errors import ConfigError
from judgeflow.judging.runner import BatchTotals
from judgeflow.judging.verdict_cache import NullVerdictCache
from judgeflow.quality.agreement import weighted_kappa
from judgeflow.quality.stats import OVERALL
from judgeflow.rubric import Rubric, load_rubric, rubric_path
from judgeflow.rubrics.estimate import CostEstimate, estimate_cost
from judgeflow.rubrics.golden import GoldenSet
from judgeflow.rubrics.versions import VersionComparison, compare_versions
from judgeflow.storage.estimates import StagedSizes, mean_output_tokens, staged_sizes, version_output_tokens
from judgeflow.storage.sampling import SampleRule
from judgeflow.storage.versions import paired_scores
from judgeflow.storage.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """The rubric as it is, the same rubric on the new model, and the days both judge."""

    current: Rubric
    candidate: Rubric
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def last_days(
        cls, settings: Settings, rubric: Rubric, *, to_model: str, days: int, now: dt.datetime
    ) -> MigrationPlan:
        """The last ``days`` whole UTC days before ``now``; refuses a model without a price."""
        if days < 1:
            raise ConfigError(f"migrate-model: --days must be at least 1, got {days}")
        if to_model == rubric.model:
            raise ConfigError(f"migrate-model: rubric {rubric.name!r} already uses {to_model}")
        settings.price_for(to_model)  # a ConfigError naming 'prices' when the model has none
        end = dt.datetime.combine(now.astimezone(dt.UTC).date(), dt.time(), dt.UTC)
        candidate = rubric.model_copy(update={"model": to_model})
        return cls(rubric, candidate, end - dt.timedelta(days=days), end)

    def run_key(self, rubric: Rubric) -> str:
        """The shadow run's key for one side: fixed by rubric version and days, so a rerun resumes."""
        return f"migrate/{rubric.name}/{rubric.version_key}/{self.start:%Y%m%d}-{self.end:%Y%m%d}"


@dataclass(frozen=True, slots=True)
class MigrationEstimate:
    """What the migration will cost, by part, at the realtime price (batch halves it)."""

    parts: tuple[tuple[str, CostEstimate], ...]

    @property
    def cost_usd(self) -> float:
        return round(sum(e.cost_usd for _, e in self.parts), 6)

    def describe(self) -> str:
        lines = [f"  {label}: {e.describe()}" for label, e in self.parts]
        return "\n".join([*lines, f"  dry-run estimate: ${self.cost_usd:.4f}"])


def estimate_migration(
    warehouse: Warehouse, settings: Settings, plan: MigrationPlan, golden: GoldenSet | None, *, sample: SampleRule
) -> MigrationEstimate:
    """Price the shadow run of both sides and the golden set, staging what each side still needs.

    The new model's output length is the current version's mean output tokens (from its scores)
    scaled by the ratio of the two tokenizers: the verdict is the same JSON, counted differently."""
    current_out = version_output_tokens(warehouse, plan.current.name, plan.current.version_key)
    current_out = current_out or mean_output_tokens(warehouse, plan.current.name)
    current_out = current_out or float(settings.budget.expected_output_tokens)
    ratio = (
        settings.price_for(plan.candidate.model).tokenizer_factor
        / settings.price_for(plan.current.model).tokenizer_factor
    )
    parts: list[tuple[str, CostEstimate]] = []
    for label, rubric, per_request in (
        (f"shadow run, {plan.candidate.model}", plan.candidate, current_out * ratio),
        (f"days {plan.current.model} has not scored yet", plan.current, current_out),
    ):
        run_key = stage_side(warehouse, settings, plan, rubric, sample=sample)
        try:
            sizes = staged_sizes(warehouse, run_key, max_response_chars=settings.judge.max_response_chars)
        finally:
            warehouse.discard_run_items(run_key)
        estimate = estimate_cost(sizes, rubric, settings, mode="realtime", output_tokens_per_request=per_request)
        parts.append((label, replace(estimate, sample_rate=settings.sampling.rate)))
    if golden is not None:
        chars = sum(len(i.question) + len(i.context or "") + len(i.response) for i in golden.items)
        sizes = StagedSizes(len(golden.items), len(golden.items), len(golden.items), chars, 1)
        calibration = estimate_cost(
            sizes, plan.candidate, settings, mode="realtime", output_tokens_per_request=current_out * ratio
        )
        parts.append((f"calibration on {golden.path.name} (none if a fresh one exists)", calibration))
    return MigrationEstimate(tuple(parts))


def stage_side(
    warehouse: Warehouse, settings: Settings, plan: MigrationPlan, rubric: Rubric, *, sample: SampleRule
) -> str:
    """Stage the plan's days for ``rubric``: the responses its version has not scored (the suite's
    sample, if it samples); nothing older is picked up. Returns the run key."""
    run_key = plan.run_key(rubric)
    warehouse.stage_run(
        run_key=run_key,
        rubrics=[rubric],
        start=plan.start,
        end=plan.end,
        rescore=False,
        backlog=False,
        batching=settings.batching,
        sample=sample,
    )
    return run_key


def shadow_run(
    warehouse: Warehouse, settings: Settings, plan: MigrationPlan, rubric: Rubric, *, sample: SampleRule
) -> BatchTotals:
    """Judge the plan's days with ``rubric`` (either side), one judging session per staged batch as
    the score tasks do; results go to ``judge_scores`` / ``judge_errors`` under its version."""
    from judgeflow.judging.session import judge_stream

    warehouse.ensure_schema()
    run_key = stage_side(warehouse, settings, plan, rubric, sample=sample)
    totals = BatchTotals()
    cache = NullVerdictCache("a shadow run judges every response it staged (the warehouse skips scored ones)")
    try:
        for ref in warehouse.plan_batches(run_key):
            chunks = warehouse.read_batch(
                ref,
                rubric_name=rubric.name,
                rubric_version=rubric.version_key,
                dag_run_id=run_key,
                rescore=False,
                since=plan.start,
            )
            part = asyncio.run(
                judge_stream(
                    chunks,
                    settings=settings,
                    rubric=rubric,
                    cache=cache,
                    sink=warehouse,
                    dag_run_id=run_key,
                    budget_caps=[],
                )
            )
            log.info("shadow run %s batch %d: %s", rubric.model, ref.batch_index, part.to_json())
            totals = _add(totals, part)
            if part.stopped:
                break
    finally:
        warehouse.discard_run_items(run_key)
    return totals


def _add(a: BatchTotals, b: BatchTotals) -> BatchTotals:
    return BatchTotals(
        items=a.items + b.items,
        scored=a.scored + b.scored,
        errors=a.errors + b.errors,
        from_cache=a.from_cache + b.from_cache,
        usage=a.usage + b.usage,
        cost_usd=a.cost_usd + b.cost_usd,
        stopped=a.stopped or b.stopped,
    )


@dataclass(frozen=True, slots=True)
class ModelComparison:
    """The version comparison of the two models, with weighted kappa between them per criterion."""

    versions: VersionComparison
    kappas: dict[str, float | None] = field(default_factory=dict)

    def table(self) -> str:
        lines = self.versions.table().splitlines()
        lines.insert(1, f"({self.versions.old_version}: current model; {self.versions.new_version}: candidate)")
        kappa = ", ".join(f"{c} {k:.3f}" if k is not None else f"{c} n/a" for c, k in self.kappas.items())
        return "\n".join([*lines, f"weighted kappa between the models: {kappa}"])


def compare_models(warehouse: Warehouse, plan: MigrationPlan, *, movers: int = 5) -> ModelComparison:
    """Mean shift, Spearman and top movers (:func:`compare_versions`), and the quadratic-weighted
    kappa of the candidate's scores against the current model's on each criterion."""
    name, old, new = plan.current.name, plan.current.version_key, plan.candidate.version_key
    versions = compare_versions(warehouse, name, old, new, movers=movers)
    pairs = paired_scores(warehouse, name, old, new)
    scale = plan.current.scale
    kappas: dict[str, float | None] = {}
    for criterion in plan.current.criterion_names:
        group = pairs[pairs["criterion"] == criterion]
        if group.empty or criterion == OVERALL:
            continue
        kappas[criterion] = weighted_kappa(
            group["old"].astype(int).tolist(),
            group["new"].astype(int).tolist(),
            scale_min=scale.min,
            scale_max=scale.max,
        )
    return ModelComparison(versions, kappas)


def recommend(
    plan: MigrationPlan, *, gate_passed: bool, refusal: str | None, comparison: ModelComparison | None, min_drop: float
) -> str:
    """What to do, in a sentence or three: stay when the gate refused; otherwise switch, and say
    when the scores moved enough that the regression alerts' baseline will see a step."""
    if not gate_passed:
        return f"stay on {plan.current.model}: {refusal or 'the calibration gate did not pass'}"
    text = f"switch rubric {plan.current.name} to {plan.candidate.model}: the calibration gate passed"
    if comparison is not None:
        moved = [s for s in comparison.versions.shifts if abs(s.shift) >= min_drop]
        if moved:
            worst = max(moved, key=lambda s: abs(s.shift))
            text += (
                f"; the new model scores {worst.criterion} {worst.shift:+.2f} apart from the current one, "
                f"at or over alerts.min_drop ({min_drop:g}): expect the regression check to see a step the "
                "day it switches"
            )
        else:
            text += f"; no criterion's mean moved by alerts.min_drop ({min_drop:g}) or more"
    return text


MODEL_LINE = re.compile(r"^model:[ \t]*\S.*$", re.MULTILINE)


def switch_rubric_model(rubric_dir: str, plan: MigrationPlan) -> Path:
    """Write ``model: <candidate>`` into the rubric file (replacing its ``model:`` line, or after
    ``version:`` when it has none) and check that the file now loads as the candidate's version."""
    path = rubric_path(rubric_dir, plan.current.name)
    text = path.read_text(encoding="utf-8")
    line = f"model: {plan.candidate.model}"
    if MODEL_LINE.search(text):
        edited = MODEL_LINE.sub(line, text, count=1)
    else:
        edited, found = re.subn(r"^(version:.*)$", rf"\1\n{line}", text, count=1, flags=re.MULTILINE)
        if not found:
            raise ConfigError(f"{path}: no top-level 'model:' or 'version:' line to put '{line}' beside")
    path.write_text(edited, encoding="utf-8")
    loaded = load_rubric(rubric_dir, plan.current.name)
    if loaded.version_key != plan.candidate.version_key:
        path.write_text(text, encoding="utf-8")
        raise ConfigError(
            f"{path}: after the edit the rubric loads as {loaded.version_key}, not the shadow run's "
            f"{plan.candidate.version_key}; the file was restored"
        )
    return path
