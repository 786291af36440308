"""``judgeflow-dev bench-alerts`` (``make bench-alerts``): how often does a 28-day timeline with no
change in quality get any alert?

Each timeline is a warm-up week and 28 days of scores drawn from one distribution (realistic 1-5
judge scores over the helpfulness rubric's three criteria, a little different by topic; the sample
data's five topics, so each day makes 24 tests). Every day goes through the decision code the DAG's
compare and alert tasks call (:mod:`judgeflow.tasks.alerting`: the clean baseline, the comparison with Mann-Whitney and
Benjamini-Hochberg, the frozen references, the lifecycle plan) with the alert state in a real SQL
store (SQLite, or ``--url``), and counts the timelines in which on-call would have heard anything
(a new regression, a worsening, a reminder or a recovery). Only Slack is left out.

The comparison's bootstrap interval is drawn with fewer resamples here (``--n-boot``): it is printed
in reports but decides nothing (the status comes from the q-value, the lifecycle from the normal
interval of :mod:`judgeflow.quality.reference`), and it is most of the time a day takes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import MetaData, create_engine, text

from judgeflow.config import AlertConfig
from judgeflow.storage.alert_store import AlertStore
from judgeflow.storage.schema import alert_history_table, alert_tables
from judgeflow.tasks.alerting import replay_day
from judgeflow_devkit.sample_data import TOPICS as SAMPLE_TOPICS

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
WARM_UP_DAYS = 7
CRITERIA = ("accuracy", "tone", "completeness")  # the criteria of include/rubrics/helpfulness.yaml
TOPICS = SAMPLE_TOPICS  # the sample data's topics
TOPIC_SHARE = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
PROBS = {  # P(score = 1..5), about what the emulator's judge gives (mean near 3.6 to 4)
    "accuracy": np.array([0.04, 0.08, 0.18, 0.38, 0.32]),
    "tone": np.array([0.02, 0.04, 0.14, 0.42, 0.38]),
    "completeness": np.array([0.06, 0.10, 0.24, 0.34, 0.26]),
}


@dataclass(frozen=True, slots=True)
class NullResult:
    timelines: int
    days: int
    per_day: int
    alerted: int
    first_alert_days: tuple[int, ...]
    seconds: float

    @property
    def rate(self) -> float:
        return self.alerted / self.timelines if self.timelines else 0.0

    def describe(self, label: str) -> str:
        return (
            f"{label}: {self.alerted} of {self.timelines} null {self.days}-day timelines got any alert "
            f"({self.rate:.1%}), n={self.per_day} per day, {self.seconds:.0f} s"
        )


def null_timeline(seed: int, *, days: int, per_day: int) -> pd.DataFrame:
    """Scores of ``WARM_UP_DAYS + days`` days, every day from the same distribution (drawn by inverse CDF)."""
    rng = np.random.default_rng(seed)
    total_days = WARM_UP_DAYS + days
    n = total_days * per_day
    topic = rng.choice(len(TOPICS), n, p=TOPIC_SHARE)
    offsets = pd.to_timedelta(np.repeat(np.arange(total_days), per_day) * 86_400 + rng.integers(0, 86_400, n), "s")
    scores = {c: 1.0 + (rng.random(n)[:, None] > _cdf(c)[topic]).sum(axis=1) for c in CRITERIA}
    frame = pd.DataFrame({"response_id": np.arange(n).astype(str), "created_at": T0 + offsets, **scores})
    frame["topic"] = np.asarray(TOPICS)[topic]
    frame["overall"] = frame[list(CRITERIA)].mean(axis=1)
    return frame


def _cdf(criterion: str) -> np.ndarray:
    """Per topic (rows), the cumulative P(score <= 1..5): each topic tilts the criterion's distribution."""
    tilted = np.array([PROBS[criterion] * np.linspace(1 + 0.1 * t, 1 - 0.1 * t, 5) for t in range(len(TOPICS))])
    return np.cumsum(tilted / tilted.sum(axis=1, keepdims=True), axis=1)[:, :-1]


def run_timeline(
    store: AlertStore,
    frame: pd.DataFrame,
    *,
    alerts: AlertConfig,
    days: int,
    rubric: str,
    n_boot: int,
    segments: tuple[str, ...] = ("topic",),
) -> int | None:
    """Day by day through the DAG's decision code; the first day (1-based) on-call would hear, or ``None``."""
    first = None
    frame = frame[["created_at", "overall", *CRITERIA, *segments]]  # what the comparison reads, nothing more
    for day in range(days):
        start = T0 + (WARM_UP_DAYS + day) * DAY
        end = start + DAY
        window = frame[(frame["created_at"] >= end - alerts.rolling_days * DAY) & (frame["created_at"] < end)]
        _, planned = replay_day(
            store,
            frame[frame["created_at"] < end],
            alerts=alerts,
            criteria=CRITERIA,
            segments=segments,
            rubric_name=rubric,
            rubric_version="v1",
            current_start=start,
            current_end=end,
            rolling_average=float(window["overall"].mean()),
            rolling_count=len(window),
            n_boot=n_boot,
        )
        if planned.plan.tells_on_call and first is None:
            first = day + 1
    return first


@contextmanager
def alert_store(url: str) -> Iterator[AlertStore]:
    """judgeflow's alert tables in their own schema (PostgreSQL) or database (SQLite), dropped after."""
    schema = f"jf_bench_alerts_{uuid.uuid4().hex[:8]}" if url.startswith("postgresql") else None
    engine = create_engine(url)
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        engine.dispose()
        engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    metadata = MetaData()
    comparisons, state = alert_tables(metadata)
    history = alert_history_table(metadata)
    metadata.create_all(engine)
    try:
        yield AlertStore(engine, comparisons, state, history)
    finally:
        if schema:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def null_false_alert_rate(
    *,
    timelines: int,
    days: int = 28,
    per_day: int = 200,
    alerts: AlertConfig | None = None,
    url: str = "sqlite://",
    n_boot: int = 50,
    seed: int = 0,
    segments: tuple[str, ...] = ("topic",),
) -> NullResult:
    """``timelines`` null timelines through the decision code; how many got any alert."""
    alerts = alerts or AlertConfig()
    began = time.perf_counter()
    firsts = []
    with alert_store(url) as store:
        for i in range(timelines):
            frame = null_timeline(seed + i, days=days, per_day=per_day)
            first = run_timeline(
                store, frame, alerts=alerts, days=days, rubric=f"null{i}", n_boot=n_boot, segments=segments
            )
            if first is not None:
                firsts.append(first)
    return NullResult(timelines, days, per_day, len(firsts), tuple(firsts), time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev bench-alerts", description=__doc__.splitlines()[0])
    parser.add_argument("--timelines", type=int, default=200)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--per-day", type=int, nargs="+", default=[50, 300], help="responses judged per day")
    parser.add_argument("--url", default="sqlite://", help="where the alert store lives (SQLite in memory by default)")
    parser.add_argument(
        "--n-boot", type=int, default=50, help="bootstrap resamples (decide nothing; see the docstring)"
    )
    parser.add_argument(
        "--open-after",
        type=int,
        nargs="+",
        default=None,
        help="open_after_days to compare (default: 1 and the default)",
    )
    args = parser.parse_args(argv)
    defaults = AlertConfig()
    print(f"alerts: {defaults.model_dump(include={'alpha', 'min_drop', 'open_after_days', 'baseline_days'})}")
    for per_day in args.per_day:
        for open_after in args.open_after or sorted({1, defaults.open_after_days}):
            alerts = AlertConfig(open_after_days=open_after)
            result = null_false_alert_rate(
                timelines=args.timelines,
                days=args.days,
                per_day=per_day,
                alerts=alerts,
                url=args.url,
                n_boot=args.n_boot,
            )
            tag = " (the default)" if open_after == defaults.open_after_days else ""
            print(result.describe(f"open_after_days={open_after}{tag}"))
    return 0
