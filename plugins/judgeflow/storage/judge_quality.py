"""The judge's own quality in the warehouse: noise pairs, their daily figures, people's labels.

``judge_noise`` (written by the score tasks' noise sample), ``judge_noise_daily`` (by
``summarize_run``), ``judge_human_labels`` (by the view's review page). Reads serve the view (the
review queue, noise and agreement over time), the run summary (the noise sample's cost) and
``judgeflow golden export``. Every write is an upsert on the table's key, so a rerun or a reviewer
labelling again overwrites instead of adding.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, and_, func, select

from judgeflow.records import NoiseRecord
from judgeflow.storage.engine import as_utc, errors_as, upsert
from judgeflow.storage.schema import judge_quality_tables

if TYPE_CHECKING:
    from judgeflow.storage.warehouse import Warehouse


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A response offered for review, with the judge's scores and why it is in the queue."""

    response_id: Any
    queue: str
    created_at: dt.datetime
    question: str
    context: str | None
    response: str
    overall: float
    judge_scores: dict[str, int]


@dataclass(frozen=True, slots=True)
class Label:
    """A reviewer's label beside the judge's scores of the same response and rubric version."""

    response_id: Any
    reviewer: str
    queue: str
    scores: dict[str, int]
    judge_scores: dict[str, int]
    note: str
    labelled_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Reviewed:
    """A reviewed response with its text, for the golden set (the latest label wins)."""

    response_id: Any
    question: str
    context: str | None
    response: str
    scores: dict[str, int]


class JudgeQualityStore:
    """Reads and writes the judge-quality tables of one warehouse (sharing its engine)."""

    def __init__(self, warehouse: Warehouse, *, unstable_spread: int = 2) -> None:
        self.warehouse = warehouse
        self.engine = warehouse.engine
        self.unstable_spread = unstable_spread
        id_type = warehouse.source.c[warehouse.source_config.id_column].type
        self.noise, self.noise_daily, self.labels = judge_quality_tables(MetaData(), id_type)

    # --- noise -----------------------------------------------------------------------------------

    def write_noise(self, records: Sequence[NoiseRecord]) -> None:
        rows = [
            {
                "response_id": r.response_id,
                "rubric_name": r.rubric_name,
                "rubric_version": r.rubric_version,
                "dag_run_id": r.dag_run_id,
                "first_scores": r.first,
                "second_scores": r.second,
                "spread": r.spread,
                "unstable": r.spread is not None and r.spread >= self.unstable_spread,
                "cost_usd": r.cost_usd,
                "error": r.error,
                "recorded_at": r.recorded_at,
            }
            for r in records
        ]
        with errors_as("write judge_noise"), self.engine.begin() as conn:
            upsert(conn, self.noise, rows)

    def run_noise(self, *, dag_run_id: str, rubric_name: str, rubric_version: str) -> list[tuple[dict, dict, float]]:
        """The run's pairs: (first scores, second scores, cost of the second ask)."""
        n = self.noise.c
        query = select(n.first_scores, n.second_scores, n.cost_usd).where(
            n.dag_run_id == dag_run_id, n.rubric_name == rubric_name, n.rubric_version == rubric_version
        )
        with errors_as("read judge_noise"), self.engine.connect() as conn:
            return [(dict(a), dict(b or {}), float(c)) for a, b, c in conn.execute(query)]

    def noise_spent(
        self, *, dag_run_id: str, day_start: dt.datetime, day_end: dt.datetime, rubric_names: Sequence[str]
    ) -> tuple[float, float]:
        """What the second asks cost this run, and this day (by ``recorded_at``), for the budget caps."""
        n = self.noise.c
        total = func.coalesce(func.sum(n.cost_usd), 0.0)
        mine = n.rubric_name.in_(rubric_names)
        with errors_as("read judge_noise spend"), self.engine.connect() as conn:
            run = conn.execute(select(total).where(mine, n.dag_run_id == dag_run_id)).scalar_one()
            day = conn.execute(
                select(total).where(mine, n.recorded_at >= day_start, n.recorded_at < day_end)
            ).scalar_one()
        return float(run), float(day)

    def record_noise_day(self, *, rubric_name: str, rubric_version: str, day: dt.date, figures: dict[str, Any]) -> None:
        row = {
            "rubric_name": rubric_name,
            "rubric_version": rubric_version,
            "day": day,
            **{k: figures[k] for k in ("responses", "pairs", "kappa", "kappa_low", "kappa_high", "unstable")},
            "mean_abs_spread": figures["mean_abs_spread"],
            "recorded_at": dt.datetime.now(dt.UTC),
        }
        with errors_as("write judge_noise_daily"), self.engine.begin() as conn:
            upsert(conn, self.noise_daily, [row])

    def noise_days(self, *, rubric_name: str, rubric_version: str, limit: int = 28) -> list[dict[str, Any]]:
        d = self.noise_daily.c
        query = (
            select(self.noise_daily)
            .where(d.rubric_name == rubric_name, d.rubric_version == rubric_version)
            .order_by(d.day.desc())
            .limit(limit)
        )
        with errors_as("read judge_noise_daily"), self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def unstable_ids(self, *, rubric_name: str, rubric_version: str) -> list[Any]:
        """Responses whose two asks spread by ``unstable_spread`` points or more."""
        n = self.noise.c
        query = select(n.response_id).where(
            n.rubric_name == rubric_name, n.rubric_version == rubric_version, n.unstable.is_(True)
        )
        with errors_as("read judge_noise"), self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def lengths_and_scores(
        self, *, rubric_name: str, rubric_version: str, start: dt.datetime, end: dt.datetime
    ) -> tuple[list[int], list[float]]:
        """Response length in characters and overall score of the responses created in [start, end)."""
        wh, cfg = self.warehouse, self.warehouse.source_config
        src, s = wh.source, wh.scores.c
        created = src.c[cfg.created_at_column]
        query = (
            select(func.length(src.c[cfg.response_column]), s.overall)
            .join(src, src.c[cfg.id_column] == s.response_id)
            .where(s.rubric_name == rubric_name, s.rubric_version == rubric_version, created >= start, created < end)
        )
        with errors_as("read lengths and scores"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [int(n or 0) for n, _ in rows], [float(o) for _, o in rows]

    # --- review ----------------------------------------------------------------------------------

    def queue(
        self,
        *,
        rubric_name: str,
        rubric_version: str,
        since: dt.datetime,
        random_items: int,
        low_items: int,
        unstable_items: int,
        seed: str,
    ) -> list[QueueItem]:
        """Responses created since ``since`` and not yet labelled under this version: a seeded random
        sample (its labels give an unbiased agreement figure), the lowest scores, and the verdicts
        the noise sample found unstable; each response once, the random sample first."""
        s = self.warehouse.scores.c
        labelled = select(self.labels.c.response_id).where(
            self.labels.c.rubric_name == rubric_name, self.labels.c.rubric_version == rubric_version
        )
        wh, cfg = self.warehouse, self.warehouse.source_config
        base = and_(
            s.rubric_name == rubric_name,
            s.rubric_version == rubric_version,
            wh.source.c[cfg.created_at_column] >= since,
            s.response_id.not_in(labelled),
        )
        ids = (
            select(s.response_id, s.overall)
            .join(wh.source, wh.source.c[cfg.id_column] == s.response_id)
            .where(base)
            .order_by(s.response_id)
        )
        with errors_as("read the review queue"), self.engine.connect() as conn:
            candidates = conn.execute(ids).all()
            unstable = set(
                conn.execute(
                    select(self.noise.c.response_id).where(
                        self.noise.c.rubric_name == rubric_name,
                        self.noise.c.rubric_version == rubric_version,
                        self.noise.c.unstable.is_(True),
                    )
                ).scalars()
            )
        rng = random.Random(seed)
        picked: dict[Any, str] = {}
        for rid, _ in rng.sample(candidates, min(random_items, len(candidates))):
            picked[rid] = "random"
        lowest = [rid for rid, _ in sorted(candidates, key=lambda row: row[1]) if rid not in picked]
        picked.update(dict.fromkeys(lowest[:low_items], "low"))
        for rid in sorted((rid for rid, _ in candidates if rid in unstable), key=str)[:unstable_items]:
            picked.setdefault(rid, "unstable")
        return self._queue_items(picked, rubric_name=rubric_name, rubric_version=rubric_version)

    def _queue_items(self, picked: dict[Any, str], *, rubric_name: str, rubric_version: str) -> list[QueueItem]:
        if not picked:
            return []
        rows = self._texts(list(picked), rubric_name=rubric_name, rubric_version=rubric_version)
        judge = self._judge_scores(list(picked), rubric_name=rubric_name, rubric_version=rubric_version)
        order = {rid: i for i, rid in enumerate(picked)}
        return sorted(
            (
                QueueItem(
                    response_id=r["response_id"],
                    queue=picked[r["response_id"]],
                    created_at=as_utc(r["created_at"]),
                    question=r["question"] or "",
                    context=r["context"],
                    response=r["response"] or "",
                    overall=float(r["overall"]),
                    judge_scores=judge.get(r["response_id"], {}),
                )
                for r in rows
            ),
            key=lambda item: order[item.response_id],
        )

    def _texts(self, ids: list[Any], *, rubric_name: str, rubric_version: str) -> list[dict[str, Any]]:
        wh, cfg = self.warehouse, self.warehouse.source_config
        src, s = wh.source, wh.scores.c
        context = src.c[cfg.context_column] if cfg.context_column and cfg.context_column in src.c else None
        query = (
            select(
                s.response_id,
                s.overall,
                src.c[cfg.created_at_column].label("created_at"),
                src.c[cfg.question_column].label("question"),
                (context if context is not None else func.null()).label("context"),
                src.c[cfg.response_column].label("response"),
            )
            .join(src, src.c[cfg.id_column] == s.response_id)
            .where(s.rubric_name == rubric_name, s.rubric_version == rubric_version, s.response_id.in_(ids))
        )
        with errors_as("read responses for review"), self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def _judge_scores(self, ids: list[Any], *, rubric_name: str, rubric_version: str) -> dict[Any, dict[str, int]]:
        c = self.warehouse.criterion_scores.c
        query = select(c.response_id, c.criterion, c.score).where(
            c.rubric_name == rubric_name, c.rubric_version == rubric_version, c.response_id.in_(ids)
        )
        out: dict[Any, dict[str, int]] = {}
        with errors_as("read criterion scores"), self.engine.connect() as conn:
            for rid, criterion, score in conn.execute(query):
                out.setdefault(rid, {})[criterion] = int(score)
        return out

    def save_label(
        self,
        *,
        response_id: Any,
        rubric_name: str,
        rubric_version: str,
        reviewer: str,
        queue: str,
        scores: dict[str, int],
        note: str,
        at: dt.datetime,
    ) -> None:
        row = {
            "response_id": response_id,
            "rubric_name": rubric_name,
            "rubric_version": rubric_version,
            "reviewer": reviewer,
            "queue": queue,
            "scores": scores,
            "note": note,
            "labelled_at": at,
        }
        with errors_as("write judge_human_labels"), self.engine.begin() as conn:
            upsert(conn, self.labels, [row])

    def labels_with_judge(self, *, rubric_name: str, rubric_version: str) -> list[Label]:
        """Every label of the version, oldest first, beside the judge's scores of the same response."""
        lb = self.labels.c
        query = (
            select(lb.response_id, lb.reviewer, lb.queue, lb.scores, lb.note, lb.labelled_at)
            .where(lb.rubric_name == rubric_name, lb.rubric_version == rubric_version)
            .order_by(lb.labelled_at)
        )
        with errors_as("read judge_human_labels"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        judge = self._judge_scores([r[0] for r in rows], rubric_name=rubric_name, rubric_version=rubric_version)
        return [Label(r[0], r[1], r[2], dict(r[3]), judge.get(r[0], {}), r[4], as_utc(r[5])) for r in rows]

    def reviewed(self, *, rubric_name: str, rubric_version: str | None = None) -> list[Reviewed]:
        """Labelled responses with their texts, the latest label of each; every version unless one is named."""
        lb = self.labels.c
        where = [lb.rubric_name == rubric_name] + ([lb.rubric_version == rubric_version] if rubric_version else [])
        query = select(lb.response_id, lb.scores, lb.labelled_at).where(*where).order_by(lb.labelled_at)
        with errors_as("read judge_human_labels"), self.engine.connect() as conn:
            latest = {rid: dict(scores) for rid, scores, _ in conn.execute(query)}
        if not latest:
            return []
        wh, cfg = self.warehouse, self.warehouse.source_config
        src = wh.source
        context = src.c[cfg.context_column] if cfg.context_column and cfg.context_column in src.c else None
        texts = select(
            src.c[cfg.id_column],
            src.c[cfg.question_column],
            (context if context is not None else func.null()),
            src.c[cfg.response_column],
        ).where(src.c[cfg.id_column].in_(list(latest)))
        with errors_as("read responses for export"), self.engine.connect() as conn:
            rows = conn.execute(texts).all()
        return [Reviewed(r[0], r[1] or "", r[2], r[3] or "", latest[r[0]]) for r in rows if r[3]]
