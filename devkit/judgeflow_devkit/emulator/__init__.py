"""A local Anthropic Messages API emulator: a real HTTP server the unmodified SDK talks to.

Point ``anthropic.Anthropic(base_url=server.url)`` at it to run the judge, its retries and its
cost accounting without the network: scores are a pure function of the judged text
(:func:`emulated_scores`), and latency, rate limits, faults and prompt caching are knobs on
:class:`EmulatorConfig`. ``python -m judgeflow_devkit.emulator`` serves it in the foreground.
"""

from __future__ import annotations

from judgeflow_devkit.emulator.config import EmulatorConfig
from judgeflow_devkit.emulator.scoring import emulated_rationale, emulated_scores
from judgeflow_devkit.emulator.server import EmulatorServer, create_app

__all__ = ["EmulatorConfig", "EmulatorServer", "create_app", "emulated_rationale", "emulated_scores"]
