"""Who ran what when: overlap and per-worker figures of the stack run, and the worker identity."""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from judgeflow_devkit.stack.identity import WORKER_NAME_VARIABLE, worker_hostname
from judgeflow_devkit.stack.observe import (
    TaskSpan,
    cross_worker_overlaps,
    phase_seconds,
    spans_from_api,
    worker_figures,
)

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def span(index: int, host: str, start_s: float, end_s: float) -> TaskSpan:
    return TaskSpan(index, host, "success", T0 + dt.timedelta(seconds=start_s), T0 + dt.timedelta(seconds=end_s))


def test_only_spans_on_different_workers_that_share_time_overlap() -> None:
    spans = [span(0, "a", 0, 10), span(1, "a", 5, 15), span(2, "b", 9, 20), span(3, "b", 20, 25)]
    overlaps = cross_worker_overlaps(spans)
    assert [(x.map_index, y.map_index, shared) for x, y, shared in overlaps] == [(0, 2, 1.0), (1, 2, 6.0)]


def test_touching_spans_do_not_overlap() -> None:
    assert cross_worker_overlaps([span(0, "a", 0, 10), span(1, "b", 10, 20)]) == []


def test_worker_figures_count_responses_by_map_index() -> None:
    spans = [span(0, "a", 0, 10), span(1, "a", 0, 10), span(2, "b", 5, 25)]
    figures = {f.worker: f for f in worker_figures(spans, [100, 200, 300])}
    assert (figures["a"].tasks, figures["a"].responses, figures["a"].task_seconds) == (2, 300, 20.0)
    assert figures["a"].active_seconds == 10.0
    assert figures["a"].responses_per_second == 30.0 and figures["a"].responses_per_task_second == 15.0
    assert figures["b"].responses_per_second == 15.0
    assert phase_seconds(spans) == 25.0


def test_task_instances_that_never_ran_have_no_span() -> None:
    rows = [
        {"map_index": 0, "hostname": "a", "state": "success", "start_date": "2026-03-02T12:00:00Z",
         "end_date": "2026-03-02T12:00:04.5Z"},
        {"map_index": 1, "hostname": None, "state": "skipped", "start_date": None, "end_date": None},
    ]  # fmt: skip
    spans = spans_from_api(rows)
    assert [(s.map_index, s.hostname, s.seconds) for s in spans] == [(0, "a", 4.5)]


def test_worker_hostname_is_the_workers_name_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKER_NAME_VARIABLE, "worker-b")
    assert worker_hostname() == "worker-b"
    monkeypatch.delenv(WORKER_NAME_VARIABLE)
    assert worker_hostname() == socket.getfqdn(), "Airflow's default"
