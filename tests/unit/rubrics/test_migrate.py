"""The pure parts of a model migration: the plan's days, the recommendation, the rubric file's edit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from judgeflow.config import Settings
from judgeflow.errors import ConfigError
from judgeflow.rubric import load_rubric
from judgeflow.rubrics.migrate import MigrationPlan, ModelComparison, recommend, switch_rubric_model
from judgeflow.rubrics.versions import CriterionShift, VersionComparison

NO_MODEL_LINE = """\
name: terse
version: 3
instructions: Judge it.
criteria:
  - name: accuracy
    description: Is it right?
"""
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)


def plan_for(folder: Path, text: str = NO_MODEL_LINE, to_model: str = "claude-haiku-5-5") -> MigrationPlan:
    (folder / "terse.yaml").write_text(text, encoding="utf-8")
    return MigrationPlan.last_days(Settings(), load_rubric(folder, "terse"), to_model=to_model, days=7, now=NOW)


def test_the_plan_covers_the_last_whole_days_and_the_candidate_is_a_new_version(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    assert (plan.start, plan.end) == (
        dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    )
    assert plan.candidate.model == "claude-haiku-5-5" and plan.current.model == "claude-haiku-4-5"
    assert plan.candidate.version_key != plan.current.version_key, "the model is part of the version"
    assert plan.run_key(plan.candidate) != plan.run_key(plan.current)


@pytest.mark.parametrize(
    ("to_model", "message"),
    [("claude-haiku-4-5", "already uses"), ("claude-unknown-9", "prices: no price for model")],
)
def test_a_plan_is_refused_for_the_same_model_or_one_without_a_price(
    tmp_path: Path, to_model: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_for(tmp_path, to_model=to_model)


def test_apply_adds_the_model_line_when_the_file_had_none(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    path = switch_rubric_model(str(tmp_path), plan)
    assert "version: 3\nmodel: claude-haiku-5-5\n" in path.read_text(encoding="utf-8")
    assert load_rubric(tmp_path, "terse").version_key == plan.candidate.version_key


def test_apply_replaces_an_existing_model_line_and_nothing_else(tmp_path: Path) -> None:
    text = NO_MODEL_LINE.replace("version: 3\n", "version: 3\nmodel: claude-haiku-4-5   # the judge\n")
    plan = plan_for(tmp_path, text)
    switch_rubric_model(str(tmp_path), plan)
    assert (tmp_path / "terse.yaml").read_text(encoding="utf-8") == NO_MODEL_LINE.replace(
        "version: 3\n", "version: 3\nmodel: claude-haiku-5-5\n"
    )


def comparison(shift: float) -> ModelComparison:
    shifts = [CriterionShift("accuracy", 100, 3.5, 3.5 + shift, shift, 0.9)]
    return ModelComparison(VersionComparison("terse", "3+old", "3+new", shifts, []), {"accuracy": 0.8})


def test_the_recommendation_follows_the_gate_and_warns_of_a_step(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    stay = recommend(plan, gate_passed=False, refusal="kappa 0.2 under 0.4", comparison=None, min_drop=0.25)
    assert stay == "stay on claude-haiku-4-5: kappa 0.2 under 0.4"
    quiet = recommend(plan, gate_passed=True, refusal=None, comparison=comparison(0.1), min_drop=0.25)
    assert quiet.startswith("switch") and "no criterion's mean moved" in quiet
    step = recommend(plan, gate_passed=True, refusal=None, comparison=comparison(-0.4), min_drop=0.25)
    assert step.startswith("switch") and "accuracy -0.40" in step and "step" in step
    assert "weighted kappa between the models: accuracy 0.800" in comparison(0.0).table()
