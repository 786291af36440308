"""The DAG's deadline alert, through Airflow's own deadline machinery, to a Slack webhook over HTTP.

What a scheduler and a triggerer would do, step by step with Airflow's code: the DAG (parsed with
its deadline on) is written to the metadata database, a queued run gets a ``Deadline`` row 6 hours
after it was queued, the scheduler's ``handle_miss`` turns a passed deadline into a queued
callback trigger, and that trigger, run as the triggerer runs it, posts the rendered text to Slack.
Only the loops that call these steps are left out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from judgeflow.tasks.deadline import RUN_DEADLINE_ENV
from judgeflow_devkit.slack_receiver import SlackReceiver, connection_json
from tests.support.dag_runs import ROOT

DAG_ID = "llm_judge__support"  # a shipped suite's DAG (include/suites/support.yaml); its on-call is slack_oncall
pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackReceiver]:
    with SlackReceiver() as receiver:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_ONCALL", connection_json(receiver.url))
        yield receiver


def _sync_dag_with_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse the DAG folder with the deadline switched on and write it as the DAG processor does."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.utils.session import create_session

    monkeypatch.delenv(RUN_DEADLINE_ENV, raising=False)
    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
    bag = DagBag(dag_folder=str(ROOT / "dags"), bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    assert bag.dags[DAG_ID].deadline, "the DAG must carry its deadline when the override is unset"
    sync_bag_to_db(bag, "dags-folder", None)


def _queue_run(run_id: str) -> Any:
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    now = dt.datetime.now(dt.UTC)
    with create_session() as session:
        dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        assert dag is not None
        run = dag.create_dagrun(
            run_id=run_id,
            logical_date=now,
            data_interval=None,
            run_after=now,
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.QUEUED,
            session=session,
        )
        return run.id


def _run_trigger(trigger_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    from airflow.triggers.callback import CallbackTrigger

    async def collect() -> list[dict[str, Any]]:
        return [event.payload async for event in CallbackTrigger(**trigger_kwargs).run()]

    return asyncio.run(collect())


def test_an_unfinished_run_past_its_deadline_alerts_on_call(
    monkeypatch: pytest.MonkeyPatch, slack: SlackReceiver
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.models.deadline import Deadline
    from airflow.utils.session import create_session
    from sqlalchemy import select

    _sync_dag_with_deadline(monkeypatch)
    run_id = f"manual__deadline_{dt.datetime.now(dt.UTC):%H%M%S%f}"
    dagrun_pk = _queue_run(run_id)

    with create_session() as session:
        [deadline] = session.scalars(select(Deadline).where(Deadline.dagrun_id == dagrun_pk)).all()
        run = session.get(DagRun, dagrun_pk)
        assert run is not None and run.queued_at is not None
        assert deadline.deadline_time - run.queued_at == dt.timedelta(hours=6)
        assert not deadline.missed
        deadline.deadline_time = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # six hours later
        deadline.handle_miss(session)  # what the scheduler does with a passed, unhandled deadline
        assert deadline.missed
        trigger_kwargs = dict(deadline.callback.trigger.kwargs)

    assert slack.payloads == [], "nothing is sent until the triggerer runs the callback"
    events = _run_trigger(trigger_kwargs)

    assert events[-1]["state"] == "success", events
    [payload] = slack.wait_for(1)
    assert f"{DAG_ID} run {run_id} has not finished by its deadline" in payload["text"]


def test_a_run_that_finishes_drops_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline of a run that succeeded is pruned, so it can never alert."""
    from airflow.models.dagrun import DagRun
    from airflow.models.deadline import Deadline
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    _sync_dag_with_deadline(monkeypatch)
    dagrun_pk = _queue_run(f"manual__deadline_done_{dt.datetime.now(dt.UTC):%H%M%S%f}")
    with create_session() as session:
        assert session.scalars(select(Deadline).where(Deadline.dagrun_id == dagrun_pk)).all(), "queued with one"
        run = session.get(DagRun, dagrun_pk)
        assert run is not None
        for ti in run.get_task_instances(session=session):
            ti.state = TaskInstanceState.SUCCESS
        run.dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        run.update_state(session=session)
        assert run.state == DagRunState.SUCCESS
        session.flush()
        left = session.scalars(select(Deadline).where(Deadline.dagrun_id == dagrun_pk)).all()
    assert left == []
