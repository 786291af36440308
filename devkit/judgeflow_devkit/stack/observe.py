"""What ran where and when: mapped score tasks as time spans per worker, and figures from them.

The spans come from the REST API's task instances (``hostname``, ``start_date``, ``end_date``),
the sizes from the warehouse's ``judge_run_items``; Airflow maps ``score_batch`` over the batch
descriptors in batch order, so map index *i* is the run's *i*-th batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskSpan:
    """One mapped task instance: where it ran and from when to when."""

    map_index: int
    hostname: str
    state: str
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def from_api(cls, ti: Mapping[str, Any]) -> TaskSpan:
        return cls(
            map_index=int(ti["map_index"]),
            hostname=str(ti.get("hostname") or ""),
            state=str(ti.get("state")),
            start=dt.datetime.fromisoformat(str(ti["start_date"])),
            end=dt.datetime.fromisoformat(str(ti["end_date"])),
        )

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def spans_from_api(task_instances: Sequence[Mapping[str, Any]]) -> list[TaskSpan]:
    """Spans of the task instances that started and ended (a skipped one has neither)."""
    return [TaskSpan.from_api(ti) for ti in task_instances if ti.get("start_date") and ti.get("end_date")]


def cross_worker_overlaps(spans: Sequence[TaskSpan]) -> list[tuple[TaskSpan, TaskSpan, float]]:
    """Pairs of spans on different workers that ran at the same time, with the seconds they shared."""
    pairs = []
    for i, first in enumerate(spans):
        for second in spans[i + 1 :]:
            if first.hostname == second.hostname:
                continue
            shared = (min(first.end, second.end) - max(first.start, second.start)).total_seconds()
            if shared > 0:
                pairs.append((first, second, shared))
    return pairs


@dataclass(frozen=True)
class WorkerFigures:
    """One worker's share of a run's scoring."""

    worker: str
    tasks: int
    responses: int
    task_seconds: float  # summed over its tasks (a task running 2 at a time counts twice)
    active_seconds: float  # from its first task's start to its last task's end

    @property
    def responses_per_second(self) -> float:
        """Throughput of the worker while it was scoring (all its slots together)."""
        return self.responses / self.active_seconds if self.active_seconds else 0.0

    @property
    def responses_per_task_second(self) -> float:
        """Throughput of one task slot, start-up included."""
        return self.responses / self.task_seconds if self.task_seconds else 0.0


def worker_figures(spans: Sequence[TaskSpan], batch_sizes: Sequence[int]) -> list[WorkerFigures]:
    """Per worker: tasks, responses (by map index into ``batch_sizes``), task and active seconds."""
    figures = []
    for worker in sorted({span.hostname for span in spans}):
        mine = [span for span in spans if span.hostname == worker]
        figures.append(
            WorkerFigures(
                worker=worker,
                tasks=len(mine),
                responses=sum(batch_sizes[span.map_index] for span in mine),
                task_seconds=sum(span.seconds for span in mine),
                active_seconds=(max(s.end for s in mine) - min(s.start for s in mine)).total_seconds(),
            )
        )
    return figures


def phase_seconds(spans: Sequence[TaskSpan]) -> float:
    """From the first score task's start to the last one's end."""
    if not spans:
        return 0.0
    return (max(s.end for s in spans) - min(s.start for s in spans)).total_seconds()


def format_workers(figures: Sequence[WorkerFigures]) -> str:
    lines = [
        f"{'worker':<12}{'tasks':>6}{'responses':>11}{'task s':>9}{'active s':>10}{'resp/s':>9}{'resp/task-s':>13}"
    ]
    for f in figures:
        lines.append(
            f"{f.worker:<12}{f.tasks:>6}{f.responses:>11}{f.task_seconds:>9.1f}{f.active_seconds:>10.1f}"
            f"{f.responses_per_second:>9.1f}{f.responses_per_task_second:>13.1f}"
        )
    return "\n".join(lines)
