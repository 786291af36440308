"""Counters a test or benchmark reads back: statuses, faults, tokens, concurrency and timing.

Rate-limit 429s (the buckets said no) and injected 429s are counted apart, so a benchmark can tell
a client that outran the limit from one that met a fault. Times are monotonic seconds, for
throughput: ``requests_total / (last_response_at - first_request_at)``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from judgeflow_devkit.emulator.billing import bill_usd
from judgeflow_devkit.emulator.faults import Fault
from judgeflow_devkit.emulator.reply import Reply

DISCONNECTED = 499
"""The status recorded (never sent) when the client went away first, as nginx logs it."""


class Stats:
    """Plain counters; the owner (:class:`~judgeflow_devkit.emulator.state.EmulatorState`) locks them."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.by_status: Counter[str] = Counter()
        self.rate_limited = 0
        self.faults: Counter[str] = Counter()
        self.client_disconnects = 0
        self.input_tokens_total = 0
        self.output_tokens_total = 0
        self.cache_read_tokens_total = 0
        self.cache_creation_tokens_total = 0
        self.cache_creation_1h_tokens_total = 0
        self.billed_usd: dict[str, float] = {}
        self.batch_requests_billed = 0
        self.first_request_at: float | None = None
        self.last_response_at: float | None = None

    def started(self, now: float) -> None:
        self.requests_total += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.first_request_at is None:
            self.first_request_at = now

    def finished(self, status: int, now: float) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.by_status[str(status)] += 1
        if status == DISCONNECTED:
            self.client_disconnects += 1
        self.last_response_at = now

    def fault(self, fault: Fault) -> None:
        if fault is not Fault.NONE:
            self.faults[fault.value] += 1

    def usage(self, reply: Reply, model: str) -> None:
        """A live reply: its tokens, and its bill at ``model``'s prices."""
        self.input_tokens_total += reply.input_tokens
        self.output_tokens_total += reply.output_tokens
        self.cache_read_tokens_total += reply.cache.read
        self.cache_creation_tokens_total += reply.cache.creation
        self.cache_creation_1h_tokens_total += reply.cache.creation_1h
        self.bill(reply, model, batch=False)

    def bill(self, reply: Reply, model: str, *, batch: bool) -> None:
        """Add the reply's dollars (:mod:`~judgeflow_devkit.emulator.billing`) to ``model``'s bill;
        a Message Batches request is billed here only (its tokens are not in the live totals)."""
        dollars = bill_usd(
            model, input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, cache=reply.cache, batch=batch
        )
        self.billed_usd[model] = self.billed_usd.get(model, 0.0) + dollars
        self.batch_requests_billed += int(batch)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy; every fault kind is present, zero or not."""
        return {
            "requests_total": self.requests_total,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "by_status": dict(sorted(self.by_status.items())),
            "rate_limited": self.rate_limited,
            "faults": {f.value: self.faults[f.value] for f in Fault if f is not Fault.NONE},
            "client_disconnects": self.client_disconnects,
            "input_tokens_total": self.input_tokens_total,
            "output_tokens_total": self.output_tokens_total,
            "cache_read_tokens_total": self.cache_read_tokens_total,
            "cache_creation_tokens_total": self.cache_creation_tokens_total,
            "cache_creation_1h_tokens_total": self.cache_creation_1h_tokens_total,
            "billed_usd_total": round(sum(self.billed_usd.values()), 8),
            "billed_usd_by_model": {m: round(v, 8) for m, v in sorted(self.billed_usd.items())},
            "batch_requests_billed": self.batch_requests_billed,
            "first_request_at": self.first_request_at,
            "last_response_at": self.last_response_at,
        }
