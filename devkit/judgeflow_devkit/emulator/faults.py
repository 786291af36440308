"""Injected faults: which one (if any) a request gets, drawn from one seeded RNG.

One uniform draw per admitted request is compared with the cumulative fault rates, so a
sequential client sees the same faults in the same places on every run with the same seed.
Malformed verdicts alternate between a missing criterion and an out-of-range score, so a client's
validation is exercised on both.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import NamedTuple

from judgeflow_devkit.emulator.config import EmulatorConfig


class Fault(StrEnum):
    """What goes wrong with a request; the values are the keys of the stats' ``faults`` counters."""

    NONE = "none"
    RATE_LIMIT = "429"
    OVERLOADED = "529"
    API_ERROR = "500"
    HANG = "hang"
    MALFORMED = "malformed"


class Malformation(StrEnum):
    """How a malformed verdict is wrong (JSON-schema mode always answers with non-JSON text)."""

    MISSING_CRITERION = "missing_criterion"
    OUT_OF_RANGE = "out_of_range"


class Draw(NamedTuple):
    fault: Fault
    malformation: Malformation | None = None


_ORDER = (Fault.RATE_LIMIT, Fault.OVERLOADED, Fault.API_ERROR, Fault.HANG, Fault.MALFORMED)


class FaultInjector:
    """Draws faults with the configured probabilities; :meth:`reset` replays the same sequence."""

    def __init__(self, config: EmulatorConfig) -> None:
        rates = config.fault_rates
        self._rates = [(fault, rates[fault.value]) for fault in _ORDER]
        self._seed = config.seed
        self.reset()

    def reset(self) -> None:
        self._rng = random.Random(self._seed)
        self._malformed = 0

    def draw(self) -> Draw:
        """The fault for the next request; always consumes exactly one random number."""
        u = self._rng.random()
        threshold = 0.0
        for fault, rate in self._rates:
            threshold += rate
            if u < threshold:
                return Draw(fault, self._next_malformation() if fault is Fault.MALFORMED else None)
        return Draw(Fault.NONE)

    def _next_malformation(self) -> Malformation:
        self._malformed += 1
        return Malformation.MISSING_CRITERION if self._malformed % 2 else Malformation.OUT_OF_RANGE
