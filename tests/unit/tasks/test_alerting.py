"""Who may page: the run type and the interval decide, never the clock."""

from __future__ import annotations

import datetime as dt

import pytest

from judgeflow.config import RunParams
from judgeflow.tasks.alerting import backfill_days, run_role

DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 11, 14, tzinfo=dt.UTC)
NEWEST = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
BACKFILL = {"backfill_from": "2026-11-12", "backfill_until": "2026-11-16"}


@pytest.mark.parametrize(
    ("run_type", "conf", "start", "expected"),
    [
        pytest.param("scheduled", {}, NEWEST - DAY, (True, False, False), id="the-newest-day-pages"),
        pytest.param("manual", {}, NEWEST - DAY, (True, False, False), id="a-rerun-of-the-newest-day-may-page"),
        pytest.param("manual", {}, START, (False, False, False), id="dags-test-of-a-past-day-is-history"),
        pytest.param("scheduled", {}, START, (False, False, False), id="a-cleared-past-run-is-history"),
        pytest.param("backfill", {}, START, (False, True, False), id="a-backfill-without-its-days-no-digest"),
        pytest.param("backfill", BACKFILL, START, (False, True, False), id="inside-a-backfill"),
        pytest.param("backfill", BACKFILL, START + 2 * DAY, (False, True, True), id="its-last-day-sends-the-digest"),
        pytest.param("manual", BACKFILL, START + 2 * DAY, (False, True, True), id="a-conf-backfill-under-dags-test"),
        pytest.param("backfill", BACKFILL, NEWEST - DAY, (False, True, False), id="a-backfill-never-pages"),
    ],
)
def test_run_role(run_type: str, conf: dict[str, str], start: dt.datetime, expected: tuple[bool, bool, bool]) -> None:
    role = run_role(
        run_type=run_type, params=RunParams(**conf), interval_start=start, interval_end=start + DAY, newest_end=NEWEST
    )
    assert (role.latest, role.backfill, role.digest) == expected


def test_the_first_run_of_a_dag_is_the_newest() -> None:
    role = run_role(
        run_type="scheduled", params=RunParams(), interval_start=START, interval_end=START + DAY, newest_end=None
    )
    assert role.latest


def test_backfill_days_are_inclusive_of_the_last() -> None:
    assert backfill_days(RunParams(**BACKFILL), START) == (dt.datetime(2026, 11, 12, tzinfo=dt.UTC), START + 3 * DAY)
