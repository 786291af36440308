"""``judgeflow calibrate``: judge a rubric's golden set now, print the agreement table, store the run.

Without ``ANTHROPIC_API_KEY`` it starts the local Messages API emulator and judges with it (as
``judgeflow demo`` does); with it, the real API. The warehouse is the ``judge_warehouse`` connection
when one is defined, else the embedded SQLite file named in the settings. Unlike the DAG's
``calibrate_rubric`` task it always judges (that is how to re-check a refused version on demand),
and its run becomes the latest calibration the DAG sees. Exit code 0 when the rubric version
passed, 1 when it is refused, 2 for a configuration problem.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from judgeflow.errors import JudgeflowError

if TYPE_CHECKING:
    from judgeflow.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SETTINGS = PROJECT_ROOT / "include" / "judgeflow.yaml"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="judgeflow calibrate",
        description="Judge a rubric's golden set now, print the agreement table and store the run.",
    )
    p.add_argument("--rubric", default=None, help="rubric name (default: the settings' rubric)")
    p.add_argument("--settings", type=Path, default=DEFAULT_SETTINGS, help="settings file (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    from judgeflow.config import load_settings

    args = build_parser().parse_args(argv)
    for name in ("httpx", "httpx2"):  # one line per judged item would drown the table
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        settings = load_settings(args.settings)
        with _judge_connection(settings.connections.anthropic):
            return _calibrate(settings, args.rubric)
    except JudgeflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _calibrate(settings: Settings, rubric_name: str | None) -> int:
    from judgeflow.calibration import format_table
    from judgeflow.calibration_gate import calibrate
    from judgeflow.calibration_store import CalibrationStore
    from judgeflow.connections import warehouse_url
    from judgeflow.golden import golden_path, load_golden_set
    from judgeflow.rubric import load_rubric

    rubric = load_rubric(settings.rubric_dir, rubric_name or settings.rubric)
    golden = load_golden_set(settings.calibration.golden_dir, rubric)
    if golden is None:
        print(
            f"rubric {rubric.name!r} has no golden set at {golden_path(settings.calibration.golden_dir, rubric.name)}"
        )
        return 2
    url = warehouse_url(settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path)
    store = CalibrationStore.from_url(url)
    store.ensure_schema()
    print(f"judging the golden set {golden.path.name} ({len(golden.items)} items) with {rubric.model}")
    calibration = asyncio.run(
        calibrate(golden, settings=settings, rubric=rubric, store=store, now=dt.datetime.now(dt.UTC))
    )
    print()
    print(format_table(calibration, settings.calibration))
    print(f"\nstored in judge_calibrations and judge_calibration_runs at {store.engine.url.render_as_string()}")
    return 0 if calibration.passed else 1


@contextmanager
def _judge_connection(conn_id: str) -> Iterator[None]:
    """The judge's connection for this process: as configured, the real API, or a local emulator."""
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    if os.environ.get(variable):
        yield
        return
    if os.environ.get("ANTHROPIC_API_KEY"):
        print("ANTHROPIC_API_KEY is set: judging with the real Anthropic API")
        os.environ[variable] = json.dumps({"conn_type": "anthropic", "password": os.environ["ANTHROPIC_API_KEY"]})
        yield
        return
    from judgeflow.emulator import EmulatorConfig, EmulatorServer

    with EmulatorServer(EmulatorConfig(latency_median_s=0.02)) as emulator:
        print(f"no ANTHROPIC_API_KEY: judging with the local Messages API emulator at {emulator.url}")
        os.environ[variable] = json.dumps({"conn_type": "anthropic", "password": "calibrate-key", "host": emulator.url})
        no_proxy = os.environ.get("NO_PROXY", "")
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(filter(None, [no_proxy, "127.0.0.1", "localhost"]))
        try:
            yield
        finally:
            os.environ.pop(variable, None)
