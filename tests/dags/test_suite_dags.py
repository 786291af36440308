"""The DAG factory: a DAG per suite file, and a bad suite file is an import error that stops no other suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, Table, create_engine

from judgeflow_devkit.sample_data import source_table
from tests.conftest import sqlite_connection
from tests.support import ROOT

CHECK_FILE = "llm_judge_suite_check.py"
TABLE_SUITE = "description: the support bot\nowner: support-ml\ntags: [support]\n"
QUERY_SUITE = """
source:
  query: "SELECT id, logged_at AS created_at, payload ->> 'q' AS question, payload ->> 'a' AS response,
          NULL AS context, payload ->> 'locale' AS locale FROM events"
  segment_columns: [locale]
rubrics: [faithfulness, concision]
sampling: {rate: 0.5, by: locale}
schedule: {asset: "warehouse://logs/events"}
connections: {slack: slack_search}
"""
BAD = {
    "typo.yaml": ("sourse: {table: app_responses}\n", ["sourse", "unknown key"]),
    "ghost_rubric.yaml": ("rubrics: [no_such_rubric]\n", ["rubrics", "no rubric 'no_such_rubric'"]),
    "twin.yaml": ("dag_id: llm_judge__support\nrubric: concision\n", ["dag_id", "used twice"]),
    "no_table.yaml": ("source: {table: no_such_table}\nrubric: faithfulness\nconnections: {warehouse: other}\n", []),
    "no_column.yaml": (
        "source: {table: app_responses, question_column: prompt}\nrubric: concision\nconnections: {warehouse: other}\n",
        [],
    ),
}


def deployment(folder: Path, suites: dict[str, str]) -> Path:
    """An include folder: shared defaults, the suites, and a warehouse holding both suites' sources."""
    warehouse = folder / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    metadata = MetaData()
    source_table(metadata)
    Table(
        "events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("logged_at", DateTime),
        Column("payload", JSON),
    )
    metadata.create_all(engine)
    engine.dispose()
    include = folder / "include"
    (include / "suites").mkdir(parents=True)
    defaults = f"rubric_dir: {ROOT / 'include' / 'rubrics'}\nembedded_warehouse_path: {warehouse}\n"
    (include / "judgeflow.yaml").write_text(defaults, encoding="utf-8")
    for name, text in suites.items():
        (include / "suites" / name).write_text(text, encoding="utf-8")
    return warehouse


def parse(monkeypatch: pytest.MonkeyPatch, folder: Path, *, source_check: bool) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("JUDGEFLOW_INCLUDE_DIR", str(folder / "include"))
    monkeypatch.setenv("JUDGEFLOW_SOURCE_CHECK_SECONDS", "600" if source_check else "0")
    monkeypatch.setattr("tempfile.tempdir", str(folder))  # this test's own source check cache
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_each_suite_file_is_a_dag_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Asset

    deployment(tmp_path, {"support.yaml": TABLE_SUITE, "search.yaml": QUERY_SUITE})

    bag = parse(monkeypatch, tmp_path, source_check=True)

    assert bag.import_errors == {}
    support, search = bag.dags["llm_judge__support"], bag.dags["llm_judge__search"]
    assert set(bag.dag_ids) == {"llm_judge__support", "llm_judge__search"}
    assert support.timetable.expression == "0 0 * * *", "@daily"
    assert search.timetable.asset_condition == Asset(uri="warehouse://logs/events", name="warehouse://logs/events")
    assert {"suite:support", "support"} <= set(support.tags) and "suite:search" in search.tags
    assert {t.owner for t in support.tasks} == {"support-ml"}
    assert "#### Suite `support`: the support bot" in support.doc_md and "`faithfulness`, `concision`" in search.doc_md
    (outlet,) = search.get_task("summarize_run").outlets
    assert outlet.uri == "judgeflow://search/judge_scores"
    assert support.get_task("score_batch").partial_kwargs["suite"] == str(
        tmp_path / "include" / "suites" / "support.yaml"
    )


def test_a_single_settings_file_keeps_the_dag_id_llm_judge_daily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployment(tmp_path, {})
    (tmp_path / "include" / "suites").rmdir()

    bag = parse(monkeypatch, tmp_path, source_check=False)

    assert (bag.import_errors, bag.dag_ids) == ({}, ["llm_judge_daily"])
    task = bag.dags["llm_judge_daily"].get_task("score_batch")
    assert task.partial_kwargs["suite"] == str(tmp_path / "include" / "judgeflow.yaml")


def test_bad_suite_files_are_one_import_error_naming_each_and_every_other_suite_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = deployment(
        tmp_path, {"support.yaml": TABLE_SUITE, "search.yaml": QUERY_SUITE, **{k: v for k, (v, _) in BAD.items()}}
    )
    monkeypatch.setenv("AIRFLOW_CONN_OTHER", sqlite_connection(warehouse))

    bag = parse(monkeypatch, tmp_path, source_check=True)

    (path, error) = next(iter(bag.import_errors.items()))
    assert list(bag.import_errors) == [path] and path.endswith(CHECK_FILE), bag.import_errors
    suites = tmp_path / "include" / "suites"
    lines = {line.split(": ", 1)[0].removeprefix("- "): line for line in error.splitlines() if line.startswith("- ")}
    assert set(lines) == {str(suites / name) for name in BAD}, error
    for name, (_, fragments) in BAD.items():
        for fragment in fragments:
            assert fragment in lines[str(suites / name)], lines[str(suites / name)]
    assert "source.table: table 'no_such_table' not found" in lines[str(suites / "no_table.yaml")]
    assert "table 'app_responses' has no column(s) prompt" in lines[str(suites / "no_column.yaml")]
    assert {"llm_judge__support", "llm_judge__search"} <= set(bag.dag_ids), "the good suites load"
    assert not {"llm_judge__typo", "llm_judge__ghost_rubric", "llm_judge__twin"} & set(bag.dag_ids)
