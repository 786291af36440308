"""A deterministic sample of a run's work: which staged responses are judged, and which are left.

A response is in the sample when ``unit_hash(salt, id)`` is under its rate, so the decision is a
pure function of the suite's salt and the response's id: every rubric of a run judges the same
responses (the sample is applied once, to the run's one staging), and a rerun picks the same ones.

**Where the hash is computed.** In Python, over the staged ids, a chunk at a time: a SQL hash that
every warehouse dialect has (PostgreSQL, SQLite, MySQL, Snowflake, BigQuery, ...) and that agrees
bit for bit across them does not exist, while BLAKE2b over ``salt + id`` is the same everywhere.
Memory stays flat: candidates are read in keyset pages and the kept ids written back in chunks.

**Stratified.** With ``by`` a segment column, each value has its rate (``rates``, else ``rate``),
and ``min_per_segment`` keeps at least that many responses of each value in the run's interval:
the segment's threshold becomes the k-th lowest hash of its population when that is above the rate
(a heap of k per value, never the whole population). A response created before the interval (a late
arrival or a retry) is kept when it is under its rate, or when it already has an error row: it was
in a sample once, and is owed a verdict.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, case, delete, exists, literal, select

from judgeflow.config import SamplingConfig
from judgeflow.errors import ConfigError
from judgeflow.storage.engine import errors_as

if TYPE_CHECKING:
    from judgeflow.storage.warehouse import Warehouse

log = logging.getLogger(__name__)

CHUNK = 5000
_SPAN = float(2**64)


def unit_hash(salt: str, response_id: Any) -> float:
    """A number in [0, 1) that depends only on ``salt`` and the id's text (the same on every dialect)."""
    digest = hashlib.blake2b(f"{salt}\x1f{response_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SPAN


def segment_key(value: Any) -> str:
    """A segment value as ``rates`` names it: its text, or "" for NULL."""
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class SampleRule:
    """A suite's sampling settings and salt: what decides, response by response."""

    config: SamplingConfig
    salt: str

    @property
    def active(self) -> bool:
        return self.config.active

    @property
    def by(self) -> str | None:
        return self.config.by

    def rate_for(self, segment: Any) -> float:
        return self.config.rates.get(segment_key(segment), self.config.rate)

    def describe(self) -> str:
        cfg = self.config
        text = f"sample rate {cfg.rate:.0%}"
        if cfg.by:
            text += f" by {cfg.by}"
            text += f" ({', '.join(f'{k}: {v:.0%}' for k, v in cfg.rates.items())})" if cfg.rates else ""
            text += f", at least {cfg.min_per_segment} per {cfg.by}" if cfg.min_per_segment else ""
        return text


@dataclass(slots=True)
class Thresholds:
    """Per segment value, the hash under which a response of the interval is in the sample.

    Fed the interval's whole population (id, segment) once, in any order; keeps only the
    ``min_per_segment`` lowest hashes of each value."""

    rule: SampleRule
    _lowest: dict[str, list[float]] = field(default_factory=dict)
    population: int = 0

    def feed(self, rows: Iterable[tuple[Any, Any]]) -> None:
        k = self.rule.config.min_per_segment
        for response_id, segment in rows:
            self.population += 1
            if k == 0:
                continue
            heap = self._lowest.setdefault(segment_key(segment), [])  # a max-heap of the k lowest, negated
            h = unit_hash(self.rule.salt, response_id)
            if len(heap) < k:
                heapq.heappush(heap, -h)
            elif h < -heap[0]:
                heapq.heapreplace(heap, -h)

    def threshold(self, segment: Any) -> float:
        rate = self.rule.rate_for(segment)
        k = self.rule.config.min_per_segment
        heap = self._lowest.get(segment_key(segment))
        if k == 0 or heap is None:
            return rate
        if len(heap) < k:  # fewer than k in the interval: all of them
            return 1.0
        return max(rate, -heap[0])


def keep(
    rule: SampleRule, thresholds: Thresholds | None, candidates: Iterable[tuple[Any, Any, bool, bool]]
) -> Iterator[Any]:
    """The ids to judge among ``(id, segment, created_before_interval, has_error)`` candidates."""
    for response_id, segment, late, has_error in candidates:
        h = unit_hash(rule.salt, response_id)
        if has_error:
            yield response_id
        elif late or thresholds is None:
            if h < rule.rate_for(segment):
                yield response_id
        elif h <= thresholds.threshold(segment) or h < rule.rate_for(segment):
            yield response_id


# --- applied to a run's staging ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sampled:
    """What sampling did to a run's candidates: where the kept ids wait, and the counts."""

    key: str
    candidates: int
    kept: int
    population: int | None


def sample_candidates(
    warehouse: Warehouse,
    *,
    run_key: str,
    eligible: Select[Any],
    rule: SampleRule,
    start: dt.datetime,
    end: dt.datetime,
    rubric_names: Sequence[str],
) -> Sampled:
    """Stage ``eligible`` under a scratch key, keep the sample under another (``Sampled.key``).

    The caller cuts the kept ids into batches under ``run_key`` and drops both scratch keys
    (:func:`scratch_keys`); a rerun drops them first, so a task killed half-way leaves nothing
    that a later run reads."""
    if rule.by is not None and rule.by not in warehouse.segment_names():
        raise ConfigError(f"sampling.by: the source has no column {rule.by!r}")
    items = warehouse.items
    candidates_key, sample_key = scratch_keys(run_key)
    sq = eligible.subquery()
    with errors_as("stage sampling candidates"), warehouse.engine.begin() as conn:
        conn.execute(delete(items).where(items.c.run_key.in_(scratch_keys(run_key))))
        conn.execute(
            items.insert().from_select(
                ["run_key", "response_id", "batch_index"], select(literal(candidates_key), sq.c.response_id, literal(0))
            )
        )
    thresholds = None
    if rule.config.min_per_segment:
        thresholds = Thresholds(rule)
        thresholds.feed(_population(warehouse, rule, start, end))
    candidates = _candidates(warehouse, candidates_key, rule, start, rubric_names)
    counted = _Counted(candidates)
    kept = 0
    for chunk in _chunks(keep(rule, thresholds, counted), CHUNK):
        with errors_as("stage the sample"), warehouse.engine.begin() as conn:
            conn.execute(items.insert(), [{"run_key": sample_key, "response_id": i, "batch_index": 0} for i in chunk])
        kept += len(chunk)
    population = thresholds.population if thresholds is not None else None
    log.info("%s: kept %d of %d candidates (%s)", run_key, kept, counted.n, rule.describe())
    return Sampled(key=sample_key, candidates=counted.n, kept=kept, population=population)


def scratch_keys(run_key: str) -> tuple[str, str]:
    """The ``judge_run_items`` keys sampling stages under before the run's own key gets the sample."""
    return (f"{run_key}#candidates", f"{run_key}#sample")


def _population(warehouse: Warehouse, rule: SampleRule, start: dt.datetime, end: dt.datetime) -> Iterator[Any]:
    """``(id, segment)`` of every response created in the interval, in keyset pages."""
    src, cfg = warehouse.source, warehouse.source_config
    id_col, created = src.c[cfg.id_column], src.c[cfg.created_at_column]
    query = select(id_col, src.c[rule.by or cfg.id_column]).where(created >= start, created < end)
    yield from _pages(warehouse, query.order_by(id_col).limit(CHUNK), id_col, "read the sampling population")


def _candidates(
    warehouse: Warehouse, key: str, rule: SampleRule, start: dt.datetime, rubric_names: Sequence[str]
) -> Iterator[Any]:
    """``(id, segment, created before the interval, has an error row)`` of each staged candidate."""
    src, cfg, items, errors = warehouse.source, warehouse.source_config, warehouse.items, warehouse.errors
    id_col, created = src.c[cfg.id_column], src.c[cfg.created_at_column]
    segment = src.c[rule.by] if rule.by else literal(None)
    errored = exists().where(errors.c.response_id == items.c.response_id, errors.c.rubric_name.in_(rubric_names))
    query = (
        select(items.c.response_id, segment, case((created < start, True), else_=False), errored)
        .join(src, id_col == items.c.response_id)
        .where(items.c.run_key == key)
        .order_by(items.c.response_id)
        .limit(CHUNK)
    )
    for response_id, seg, late, has_error in _pages(warehouse, query, items.c.response_id, "read sampling candidates"):
        yield response_id, seg, bool(late), bool(has_error)


def _pages(warehouse: Warehouse, query: Select[Any], key: Any, action: str) -> Iterator[Any]:
    """Rows of ``query`` (ordered by ``key``, limited to a page) page after page, each its own
    short query, so no read stays open while the sample is written."""
    last: Any = None
    while True:
        page = query if last is None else query.where(and_(key > last))
        with errors_as(action), warehouse.engine.connect() as conn:
            rows = conn.execute(page).all()
        yield from rows
        if len(rows) < CHUNK:
            return
        last = rows[-1][0]


class _Counted:
    """An iterator that counts what passed through it."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self._rows = iter(rows)
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        for row in self._rows:
            self.n += 1
            yield row


def _chunks(values: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


__all__ = [
    "CHUNK",
    "SampleRule",
    "Sampled",
    "Thresholds",
    "keep",
    "sample_candidates",
    "scratch_keys",
    "segment_key",
    "unit_hash",
]
