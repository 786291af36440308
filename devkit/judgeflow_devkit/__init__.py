"""judgeflow's dev kit: what a developer runs and tests with, never installed in the production image.

- :mod:`judgeflow_devkit.emulator`: a local Messages API emulator (a real HTTP server for the
  unmodified SDK) with faults, rate limits, prompt caching and Message Batches;
- :mod:`judgeflow_devkit.slack_receiver`: a local Slack incoming-webhook receiver;
- :mod:`judgeflow_devkit.sample_data`: generated support answers (and the AlpacaEval file, for benchmarks);
- :mod:`judgeflow_devkit.demo`: ``make demo``; :mod:`judgeflow_devkit.stack`: ``make stack-test``;
- :mod:`judgeflow_devkit.bench`: the throughput, cost and UI benchmarks;
- :mod:`judgeflow_devkit.cli`: ``judgeflow-dev``, the command for all of the above.

It imports the production library (``judgeflow``); the production library never imports it (an
import-linter contract in pyproject.toml holds that).
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: the dev kit is installed editable from ``devkit/``, beside ``dags/`` and ``include/``."""
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "alpaca_eval_responses.jsonl"
"""Real LLM responses for benchmarks, beside the checkout when present; nothing in the tests needs it."""
