"""Run the real DAG in-process with ``dag.test()`` and read back what happened.

``dag.test()`` does not raise when a task fails, so callers assert the run and task states this
returns. Retries are switched off here: a failing task should fail the test now, not after the
DAG's production retry delay.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import ROOT

DAG_ID = "llm_judge_daily"


@dataclass(frozen=True)
class RunResult:
    run_id: str
    state: str
    task_states: dict[str, list[str]]

    def states_of(self, task_id: str) -> list[str]:
        return self.task_states.get(task_id, [])


def deploy(monkeypatch: Any, settings: Path) -> Path:
    """Lay out a deployment around ``settings``: its folder is the include folder the DAG files
    read at parse time (``JUDGEFLOW_INCLUDE_DIR``), so the DAG's tasks get this file as their suite."""
    monkeypatch.setenv("JUDGEFLOW_INCLUDE_DIR", str(settings.parent))
    return settings


def load_dag(dag_id: str = DAG_ID) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0
    return dag


def run_dag(logical_date: dt.datetime, conf: dict[str, Any] | None = None, *, dag_id: str = DAG_ID) -> RunResult:
    """One DAG run for ``logical_date`` (it judges the day before), with states read back."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    dag = load_dag(dag_id)
    dag_run = dag.test(logical_date=logical_date, run_conf=conf)
    with create_session() as session:
        rows = session.query(TaskInstance).filter(TaskInstance.run_id == dag_run.run_id).all()
        states: dict[str, list[str]] = {}
        for ti in sorted(rows, key=lambda t: (t.task_id, t.map_index)):
            states.setdefault(ti.task_id, []).append(str(ti.state))
    return RunResult(run_id=dag_run.run_id, state=str(dag_run.state), task_states=states)


def write_settings(folder: Path, **sections: Any) -> Path:
    """A settings file for one test: its own embedded cache, the project's rubrics."""
    import yaml

    settings: dict[str, Any] = {
        "rubric_dir": str(ROOT / "include" / "rubrics"),
        "embedded_warehouse_path": str(folder / "embedded_warehouse.sqlite"),
        "cache": {"embedded_path": str(folder / "verdict_cache.sqlite")},
        "alerts": {"min_samples": 5, "report_folder": str(folder / "reports")},
        "judge": {"backoff_base_s": 0.01, "backoff_max_s": 0.05},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    path = folder / "judgeflow.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def run_judged_by(config: Any, monkeypatch: Any, logical_date: dt.datetime) -> tuple[RunResult, dict[str, Any]]:
    """One DAG run judged by a fresh emulator with ``config``; the run and the emulator's stats."""
    from judgeflow_devkit.emulator import EmulatorServer
    from tests.conftest import anthropic_connection

    with EmulatorServer(config) as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_ANTHROPIC_DEFAULT", anthropic_connection(emulator.url))
        result = run_dag(logical_date)
        return result, emulator.stats()
