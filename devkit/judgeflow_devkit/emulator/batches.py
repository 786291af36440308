"""The Message Batches API's store: validate a batch, end it on time, and give its results back.

Nothing runs in the background. A batch's requests are spread evenly over ``batch_processing_s``
from its creation, in an order shuffled by an RNG seeded with the config's seed and the batch's
number since the last reset; the batch is processed lazily, all at once, the first time it is
observed (retrieved, listed, cancelled, its results fetched) after its deadline. Cancelling an
in-progress batch processes the requests due by then and cancels the rest; the cancel call
answers ``canceling`` and every later read ``ended``, as the real API settles a cancellation.

Each request goes through the same pure parse and reply code as ``POST /v1/messages`` (the
``judge`` callable, which also does the prompt-cache accounting as of the request's processing
time); latency, rate limits and the live fault knobs do not apply. The ``batch_rate_*`` knobs
turn a request into an ``errored`` or ``expired`` result, drawn per request in processing order;
params the API would refuse become ``errored`` results with the 400's error, as batch params are
validated asynchronously by the real API too. The batch discount is a price matter: usage is
reported exactly as the live endpoint would report it.

All methods are thread-safe behind one lock, which the HTTP layer takes from a worker thread so
a large batch does not stall the event loop. ``judge`` is called under that lock and may take
its owner's lock; the owner must never call the store while holding its own.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

from judgeflow_devkit.emulator.config import EmulatorConfig
from judgeflow_devkit.emulator.envelope import ApiError, new_id

CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
EXPIRY_S = 24 * 3600.0
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 20, 1000

Judge = Callable[[Any, float], dict[str, Any]]
"""``(params, monotonic time) -> message``; raises :class:`ApiError` for params the API refuses."""


class BatchStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    CANCELING = "canceling"
    ENDED = "ended"


class Outcome(StrEnum):
    """A request's result type, which is also its key in ``request_counts``."""

    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    CANCELED = "canceled"
    EXPIRED = "expired"


@dataclass(slots=True)
class _Batch:
    id: str
    custom_ids: list[str]
    params: list[Any]
    created_at: float
    created_wall: float
    deadline: float
    order: list[int]
    """Submission indices in processing order, which is also the order of the results."""
    draws: list[float]
    """One uniform draw per position in ``order``, for the ``batch_rate_*`` faults."""
    status: BatchStatus = BatchStatus.IN_PROGRESS
    cancel_at: float | None = None
    ended_at: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
    results: list[bytes] = field(default_factory=list)


class BatchStore:
    """Batches by id, in creation order, and the counters ``/_emulator/stats`` reports."""

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        judge: Judge,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._judge = judge
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forget every batch, zero the counters and replay the RNG: a freshly started server."""
        with self._lock:
            self._batches: dict[str, _Batch] = {}
            self._created = 0
            self._requests = 0
            self._canceled = 0

    def counters(self) -> dict[str, int]:
        with self._lock:
            return {
                "batches_created": self._created,
                "batch_requests_total": self._requests,
                "batches_canceled": self._canceled,
            }

    def create(self, body: Any) -> dict[str, Any]:
        """Validate ``body`` (``{"requests": [{"custom_id", "params"}, ...]}``) and store the batch."""
        requests = _requests(body, self._config.batch_max_requests)
        with self._lock:
            now = self._clock()
            rng = random.Random(f"{self._config.seed}:batch:{self._created}")
            order = list(range(len(requests)))
            rng.shuffle(order)
            batch = _Batch(
                id=new_id("msgbatch"),
                custom_ids=[custom_id for custom_id, _ in requests],
                params=[params for _, params in requests],
                created_at=now,
                created_wall=self._wall_clock(),
                deadline=now + self._config.batch_processing_s,
                order=order,
                draws=[rng.random() for _ in order],
            )
            self._batches[batch.id] = batch
            self._created += 1
            self._requests += len(requests)
            return self._view(batch)

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            return self._view(self._observe(batch_id))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """Cancel an in-progress batch (answered ``canceling``); any other batch is returned as is."""
        with self._lock:
            batch = self._observe(batch_id)
            if batch.status is BatchStatus.IN_PROGRESS:
                now = self._clock()
                self._process(batch, cutoff=now)
                batch.status, batch.cancel_at, batch.ended_at = BatchStatus.CANCELING, now, now
                self._canceled += 1
            return self._view(batch)

    def delete(self, batch_id: str) -> dict[str, Any]:
        """Delete an ended batch; refuse (400) one still in progress, as the real API does."""
        with self._lock:
            batch = self._observe(batch_id)
            if batch.status is not BatchStatus.ENDED:
                _invalid(f"Batch {batch_id} cannot be deleted while it is in progress; cancel it first.")
            del self._batches[batch_id]
            return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> bytes:
        """The ``.jsonl`` results of an ended batch, in processing order; 400 before it ends."""
        with self._lock:
            batch = self._observe(batch_id)
            if batch.status is not BatchStatus.ENDED:
                _invalid(f"Batch {batch_id} has not ended yet; its results are not available.")
            return b"".join(batch.results)

    def page(self, *, limit: str | None, after_id: str | None, before_id: str | None) -> dict[str, Any]:
        """One page of ``GET /v1/messages/batches``: newest first, cursors as the SDK pages them."""
        size = _limit(limit)
        with self._lock:
            ids = list(reversed(self._batches))
            if after_id is not None:
                start = ids.index(after_id) + 1 if after_id in ids else len(ids)
                chosen, has_more = ids[start : start + size], start + size < len(ids)
            elif before_id is not None:
                end = ids.index(before_id) if before_id in ids else 0
                chosen, has_more = ids[max(0, end - size) : end], end - size > 0
            else:
                chosen, has_more = ids[:size], size < len(ids)
            data = [self._view(self._observe(batch_id)) for batch_id in chosen]
        return {
            "data": data,
            "has_more": has_more,
            "first_id": chosen[0] if chosen else None,
            "last_id": chosen[-1] if chosen else None,
        }

    def _observe(self, batch_id: str) -> _Batch:
        """The batch, moved on to where it is now: ended once past its deadline or cancelled."""
        batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError("not_found_error", f"Message batch {batch_id!r} not found.")
        if batch.status is BatchStatus.CANCELING:
            batch.status = BatchStatus.ENDED
        elif batch.status is BatchStatus.IN_PROGRESS and self._clock() >= batch.deadline:
            self._process(batch, cutoff=batch.deadline)
            batch.status, batch.ended_at = BatchStatus.ENDED, batch.deadline
        return batch

    def _process(self, batch: _Batch, *, cutoff: float) -> None:
        """Answer every request due by ``cutoff`` (monotonic); cancel the others."""
        total, span = len(batch.order), self._config.batch_processing_s
        for position, index in enumerate(batch.order):
            due = batch.created_at + span * (position + 1) / total
            if due > cutoff:
                result: dict[str, Any] = {"type": Outcome.CANCELED.value}
            else:
                result = self._result(batch.params[index], batch.draws[position], due)
            batch.counts[result["type"]] += 1
            if batch.draws[position] >= 1.0 - self._config.batch_rate_dropped:
                continue  # the fault: this request's line never reaches the results file
            line = {"custom_id": batch.custom_ids[index], "result": result}
            batch.results.append(json.dumps(line, separators=(",", ":")).encode("utf-8") + b"\n")
        batch.params = []

    def _result(self, params: Any, draw: float, at: float) -> dict[str, Any]:
        errored, expired = self._config.batch_rate_errored, self._config.batch_rate_expired
        if draw < errored:
            return _errored(ApiError("api_error", "Internal server error"))
        if draw < errored + expired:
            return {"type": Outcome.EXPIRED.value}
        try:
            if isinstance(params, dict) and params.get("stream"):
                _invalid("stream: streaming is not supported in the Message Batches API")
            message = self._judge(params, at)
        except ApiError as exc:
            return _errored(exc)
        return {"type": Outcome.SUCCEEDED.value, "message": message}

    def _view(self, batch: _Batch) -> dict[str, Any]:
        """The ``message_batch`` object; ``results_url`` is a path the HTTP layer makes absolute."""
        ended = batch.status is BatchStatus.ENDED
        counts = {outcome.value: batch.counts[outcome.value] if ended else 0 for outcome in Outcome}
        counts["processing"] = 0 if ended else len(batch.order)
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status.value,
            "request_counts": counts,
            "created_at": self._timestamp(batch, batch.created_at),
            "expires_at": self._timestamp(batch, batch.created_at + EXPIRY_S),
            "ended_at": self._timestamp(batch, batch.ended_at) if ended else None,
            "cancel_initiated_at": self._timestamp(batch, batch.cancel_at),
            "archived_at": None,
            "results_url": f"/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    @staticmethod
    def _timestamp(batch: _Batch, at: float | None) -> str | None:
        """RFC 3339 (UTC) for a monotonic time, anchored at the batch's creation."""
        if at is None:
            return None
        wall = batch.created_wall + (at - batch.created_at)
        return dt.datetime.fromtimestamp(wall, dt.UTC).isoformat().replace("+00:00", "Z")


def _requests(body: Any, max_requests: int) -> list[tuple[str, dict[str, Any]]]:
    """``(custom_id, params)`` pairs, or a 400 naming the first fault."""
    if not isinstance(body, dict):
        _invalid("request body must be a JSON object")
    requests = body.get("requests")
    if not isinstance(requests, list):
        _invalid("requests: Field required")
    if not requests:
        _invalid("requests: List should have at least 1 item")
    if len(requests) > max_requests:
        _invalid(f"requests: a batch may hold at most {max_requests} requests, got {len(requests)}")
    seen: set[str] = set()
    out: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(requests):
        if not isinstance(item, dict):
            _invalid(f"requests.{i}: Input should be an object")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
            _invalid(f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if custom_id in seen:
            _invalid(f"requests.{i}.custom_id: {custom_id!r} is not unique; custom_id must be unique in a batch")
        params = item.get("params")
        if not isinstance(params, dict):
            _invalid(f"requests.{i}.params: Field required")
        seen.add(custom_id)
        out.append((custom_id, params))
    return out


def _limit(value: str | None) -> int:
    if value is None:
        return LIST_LIMIT_DEFAULT
    try:
        limit = int(value)
    except ValueError:
        _invalid("limit: Input should be a valid integer")
    if not LIST_LIMIT_MAX >= limit >= 1:
        _invalid(f"limit: Input should be between 1 and {LIST_LIMIT_MAX}")
    return limit


def _errored(exc: ApiError) -> dict[str, Any]:
    error = {"type": "error", "error": {"type": exc.error_type, "message": exc.message}}
    return {"type": Outcome.ERRORED.value, "error": error}


def _invalid(message: str) -> NoReturn:
    raise ApiError("invalid_request_error", message)
