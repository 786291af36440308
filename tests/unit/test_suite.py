"""Suite files over shared defaults: what merges, and every problem named with its file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgeflow.suite import discover_suites, load_suite
from tests.support import ROOT

RUBRICS = str(ROOT / "include" / "rubrics")
DEFAULTS = f"""
rubric: helpfulness
rubric_dir: {RUBRICS}
source: {{table: app_responses, segment_columns: [topic]}}
budget: {{max_cost_usd_per_day: 10}}
alerts: {{min_samples: 5, report_folder: reports}}
"""
GOOD = {
    "support.yaml": "owner: support-ml\nconnections: {slack: slack_support}\nalerts: {min_drop: 0.5}\n",
    "search.yaml": (
        "source: {query: 'SELECT 1', segment_columns: [locale]}\n"
        "rubrics: [faithfulness, concision]\n"
        "sampling: {rate: 0.25, by: locale, min_per_segment: 3}\n"
        "schedule: {asset: 's3://logs/search/'}\n"
        "alerts: {report_folder: ../search-reports}\n"
    ),
}


def include(tmp_path: Path, suites: dict[str, str], defaults: str = DEFAULTS) -> Path:
    (tmp_path / "suites").mkdir(exist_ok=True)
    (tmp_path / "judgeflow.yaml").write_text(defaults, encoding="utf-8")
    for name, text in suites.items():
        (tmp_path / "suites" / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_suites_merge_over_the_defaults(tmp_path: Path) -> None:
    catalog = discover_suites(include(tmp_path, GOOD))

    assert catalog.problems == ()
    by_name = {s.name: s for s in catalog.suites}
    support, search = by_name["support"], by_name["search"]
    assert (support.dag_id, search.dag_id) == ("llm_judge__support", "llm_judge__search")
    assert support.rubrics == ("helpfulness",) and search.rubrics == ("faithfulness", "concision")
    assert support.settings.alerts.min_drop == 0.5 and support.settings.alerts.min_samples == 5, "merged key by key"
    assert support.settings.connections.slack == "slack_support" and support.settings.connections.anthropic
    assert support.settings.budget.max_cost_usd_per_day == 10, "inherited"
    assert search.settings.source.query == "SELECT 1" and search.settings.source.segment_columns == ("locale",)
    assert search.settings.sampling.rate == 0.25
    assert support.settings.alerts.report_folder == str(tmp_path / "reports"), "a default path is from include/"
    assert search.settings.alerts.report_folder == str(tmp_path / "search-reports"), "a suite's from suites/"
    assert search.scores_uri == "judgeflow://search/judge_scores"
    assert load_suite(tmp_path / "suites" / "search.yaml") == search, "a task reads the same suite"


def test_a_single_settings_file_is_the_default_suite_with_the_old_dag_id(tmp_path: Path) -> None:
    (tmp_path / "judgeflow.yaml").write_text(DEFAULTS, encoding="utf-8")

    (suite,) = discover_suites(tmp_path).suites

    assert (suite.name, suite.dag_id, suite.legacy, suite.rubrics) == (
        "default",
        "llm_judge_daily",
        True,
        ("helpfulness",),
    )


@pytest.mark.parametrize(
    ("files", "bad", "fragments"),
    [
        pytest.param(
            {"typo.yaml": "source: {tabel: x}\n"},
            "typo.yaml",
            ["source.tabel", "unknown key", "table, query"],
            id="unknown-key",
        ),
        pytest.param(
            {"limits.yaml": "limits: {requests_per_minute: 10}\n"}, "limits.yaml", ["limits:", "only"], id="account-key"
        ),
        pytest.param(
            {"nope.yaml": "rubrics: [no_such_rubric]\n"}, "nope.yaml", ["rubrics:", "'no_such_rubric'"], id="no-rubric"
        ),
        pytest.param(
            {"strata.yaml": "sampling: {rate: 0.5, by: locale}\n"},
            "strata.yaml",
            ["sampling.by", "'locale'"],
            id="not-a-segment",
        ),
        pytest.param({"cron.yaml": "schedule: every day\n"}, "cron.yaml", ["schedule", "cron"], id="bad-schedule"),
        pytest.param({"Bad-Name.yaml": "{}\n"}, "Bad-Name.yaml", ["(file name)"], id="bad-file-name"),
        pytest.param({"support.yml": "{}\n"}, "support.yml", ["defined twice", "support.yaml"], id="name-twice"),
        pytest.param(
            {"zz.yaml": "dag_id: llm_judge__support\nrubric: concision\n"},
            "zz.yaml",
            ["dag_id", "used twice"],
            id="dag-id-twice",
        ),
        pytest.param(
            {"zz.yaml": "{}\n"}, "zz.yaml", ["'helpfulness' already judges suite 'support'"], id="rubric-twice"
        ),
    ],
)
def test_a_bad_suite_is_a_problem_naming_file_and_key_and_the_others_load(
    tmp_path: Path, files: dict[str, str], bad: str, fragments: list[str]
) -> None:
    catalog = discover_suites(include(tmp_path, {**GOOD, **files}))

    assert {s.name for s in catalog.suites} == {"support", "search"}, "every good suite still loads"
    (problem,) = catalog.problems
    assert problem.path == tmp_path / "suites" / bad
    assert str(problem).startswith(str(tmp_path / "suites" / bad))
    for fragment in fragments:
        assert fragment in problem.message, problem.message
