"""The emulator's knobs: latency, rate limits, fault rates, auth, prompt caching and batches.

One frozen, keyword-only object so a test, the CLI and a benchmark describe a run the same way and
nothing changes under a running server. Validation happens here, once, so the server never has to
defend against a negative rate or fault probabilities that add up to more than one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from judgeflow.errors import ConfigError

DEFAULT_MIN_CACHEABLE_TOKENS: Mapping[str, int] = {
    "claude-haiku-4-5": 4096,
    "claude-haiku-5-5": 4096,  # an assumption: not published when this was written (docs/emulator.md)
    "claude-sonnet": 1024,
    "claude-opus": 4096,
}
"""The real API's smallest cacheable prefix per model family, matched by longest prefix."""

FALLBACK_MIN_CACHEABLE_TOKENS = 1024

BATCH_MAX_REQUESTS = 100_000
BATCH_MAX_BYTES = 256 * 1024 * 1024
"""The real Message Batches API's limits per batch: requests, and bytes of the create body."""


def _default_min_cacheable() -> dict[str, int]:
    return dict(DEFAULT_MIN_CACHEABLE_TOKENS)


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """How the emulated Messages API behaves.

    Times are in seconds, rates per minute, fault rates are probabilities per request (drawn from
    one RNG seeded with ``seed``, so a sequential client sees the same faults on every run).
    ``None`` for a limit means unlimited; ``None`` for ``api_key`` means any key is accepted.

    ``obey_injections`` is a fault of judgement rather than of transport: it applies to the live
    endpoint and to batches alike.

    The ``batch_*`` knobs shape the Message Batches API only: a batch ends ``batch_processing_s``
    after creation, and each of its requests errors or expires with the ``batch_rate_*``
    probabilities (seeded too). ``batch_rate_dropped`` leaves a request out of the results file
    altogether: the API promises one result per request, so this is a fault for judgeflow to
    survive, not behaviour it emulates. Latency, rate limits and the ``rate_*`` faults do not
    apply to batches.
    """

    latency_median_s: float = 0.05
    latency_sigma: float = 0.0
    requests_per_minute: float | None = None
    input_tokens_per_minute: float | None = None
    burst_seconds: float = 1.0
    rate_429: float = 0.0
    rate_529: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_malformed: float = 0.0
    hang_seconds: float = 120.0
    api_key: str | None = None
    seed: int = 0
    cache_ttl_s: float = 300.0
    min_cacheable_tokens: Mapping[str, int] = field(default_factory=_default_min_cacheable)
    batch_max_requests: int = BATCH_MAX_REQUESTS
    batch_max_bytes: int = BATCH_MAX_BYTES
    batch_processing_s: float = 0.5
    batch_rate_errored: float = 0.0
    batch_rate_expired: float = 0.0
    batch_rate_dropped: float = 0.0
    score_noise: float = 0.0
    """Judge noise: the probability that one ask moves a criterion's score one step off its
    noise-free value (up or down at random; inwards at an end of the scale), drawn per criterion
    from an RNG seeded with ``seed``. Asking the same item twice then disagrees, as a sampled
    judge does, which judgeflow's noise sample measures (:mod:`judgeflow_devkit.emulator.scoring`)."""
    obey_injections: bool = False
    """A gullible judge: text that tells the judge what to score gets the scale maximum instead of
    the minimum (see :mod:`judgeflow_devkit.emulator.scoring`), so calibration's canaries have something
    to catch."""

    def __post_init__(self) -> None:
        _require(self.latency_median_s >= 0, "latency_median_s", "must be >= 0")
        _require(self.latency_sigma >= 0, "latency_sigma", "must be >= 0")
        for name in ("requests_per_minute", "input_tokens_per_minute"):
            value = getattr(self, name)
            _require(value is None or value > 0, name, "must be > 0 or None for unlimited")
        _require(self.burst_seconds > 0, "burst_seconds", "must be > 0")
        _require(self.hang_seconds >= 0, "hang_seconds", "must be >= 0")
        _require(self.cache_ttl_s > 0, "cache_ttl_s", "must be > 0")
        _require(0.0 <= self.score_noise <= 1.0, "score_noise", "must be a probability in [0, 1]")
        for name, rate in self.fault_rates.items():
            _require(0.0 <= rate <= 1.0, f"rate_{name}", "must be a probability in [0, 1]")
        _require(sum(self.fault_rates.values()) <= 1.0 + 1e-9, "rate_*", "fault rates must sum to <= 1")
        for model, tokens in self.min_cacheable_tokens.items():
            _require(tokens >= 0, f"min_cacheable_tokens[{model!r}]", "must be >= 0")
        _require(self.batch_max_requests >= 1, "batch_max_requests", "must be >= 1")
        _require(self.batch_max_bytes >= 1, "batch_max_bytes", "must be >= 1")
        _require(self.batch_processing_s >= 0, "batch_processing_s", "must be >= 0")
        batch_rates = ("batch_rate_errored", "batch_rate_expired", "batch_rate_dropped")
        for name in batch_rates:
            _require(0.0 <= getattr(self, name) <= 1.0, name, "must be a probability in [0, 1]")
        _require(sum(getattr(self, n) for n in batch_rates) <= 1.0 + 1e-9, "batch_rate_*", "must sum to <= 1")

    @property
    def fault_rates(self) -> dict[str, float]:
        """Fault probabilities by kind, in the order the fault draw checks them."""
        return {
            "429": self.rate_429,
            "529": self.rate_529,
            "500": self.rate_500,
            "hang": self.rate_hang,
            "malformed": self.rate_malformed,
        }

    def min_cacheable_for(self, model: str) -> int:
        """The smallest cacheable prefix for ``model``: the longest configured prefix wins."""
        for name in sorted(self.min_cacheable_tokens, key=len, reverse=True):
            if model.startswith(name):
                return self.min_cacheable_tokens[name]
        return FALLBACK_MIN_CACHEABLE_TOKENS


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"emulator: {key} {message}")
