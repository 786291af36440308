"""The DAG folder imports cleanly and each suite's DAG has the shape, defaults and docs we promise.

The DAGs are the shipped suites' (``include/suites/``); every check holds for each of them.
"""

from __future__ import annotations

import time

import pytest

from tests.support.dag_runs import ROOT

SUITE_DAGS = ("llm_judge__support", "llm_judge__search_assistant")


@pytest.fixture(scope="module")
def bag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(params=SUITE_DAGS)
def dag_id(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_dag_folder_imports_without_errors(bag) -> None:  # type: ignore[no-untyped-def]
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(SUITE_DAGS), "one DAG per shipped suite, and nothing else"


def test_tasks_and_dependencies(bag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    dag = bag.dags[dag_id]
    assert set(dag.task_ids) == {
        "calibrate_rubric",
        "extract_responses",
        "score_batch",
        "summarize_run",
        "compare_scores",
        "alert_on_call",
    }
    downstream = {t.task_id: set(t.downstream_task_ids) for t in dag.tasks}
    assert downstream["calibrate_rubric"] == {"extract_responses"}, "nothing is scored before calibration"
    assert downstream["extract_responses"] == {"score_batch"}
    assert downstream["score_batch"] == {"summarize_run"}
    assert downstream["summarize_run"] == {"compare_scores", "alert_on_call"}
    assert downstream["compare_scores"] == {"alert_on_call"}
    assert dag.get_task("summarize_run").trigger_rule == "none_failed"


def test_score_batch_is_mapped_with_a_readable_label(bag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from judgeflow.tasks.operators import ScoreBatchOperator

    task = bag.dags[dag_id].get_task("score_batch")
    assert isinstance(task, MappedOperator)
    assert task.operator_class is ScoreBatchOperator
    assert task.map_index_template == "{{ batch_label }}"
    assert task.pool == "judge_api", "the pool caps score tasks running at once"


@pytest.mark.parametrize(
    ("dag_id", "owner", "slack"),
    [
        pytest.param("llm_judge__support", "support-ml", "slack_oncall", id="support"),
        pytest.param("llm_judge__search_assistant", "search-team", "slack_search", id="search_assistant"),
    ],
)
def test_defaults_owner_retries_and_failure_notifier(bag, dag_id: str, owner: str, slack: str) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    dag = bag.dags[dag_id]
    assert dag.catchup is False
    assert dag.doc_md and "Triage" in dag.doc_md and f"`{slack}`" in dag.doc_md
    for task in dag.tasks:
        assert task.owner == owner, "the suite's owner"
        assert task.retries == 2
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert [cb.slack_webhook_conn_id for cb in callbacks if isinstance(cb, SlackWebhookNotifier)] == [slack]


def test_params_for_manual_runs(bag, dag_id: str) -> None:  # type: ignore[no-untyped-def]
    params = bag.dags[dag_id].params
    assert set(params.keys()) == {"rubric", "limit", "rescore", "mode", "dry_run", "backfill_from", "backfill_until"}
    assert params["backfill_until"] is None, "a run is not part of a backfill unless its conf says so"
    assert params["dry_run"] is False, "a run judges unless it is asked only to price"
    assert params["rescore"] is False
    assert params["limit"] is None
    assert params["mode"] is None, "the settings choose realtime or batch unless a run says otherwise"


def test_parsing_is_cheap() -> None:
    """Nothing is read from connections, files or the network at parse time."""
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    DagBag(dag_folder=str(ROOT / "dags"))
    assert time.perf_counter() - started < 5.0


def test_dag_files_import_only_the_tasks_package() -> None:
    """The layer above ``judgeflow.tasks`` (import-linter cannot see dags/, which is not a package):
    a DAG file reads like the pipeline and reaches the library only through what its tasks call."""
    import ast

    for path in (ROOT / "dags").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        ours = [name for name in imported if name.split(".")[0] in ("judgeflow", "judgeflow_devkit")]
        assert ours, path
        assert all(name.startswith("judgeflow.tasks") for name in ours), (path.name, ours)
