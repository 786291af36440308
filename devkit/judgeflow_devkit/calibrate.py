"""``judgeflow-dev calibrate [--emulator]``: ``judgeflow calibrate``, optionally against a local emulator.

With ``--emulator`` a Messages API emulator is started for this process and ``anthropic_default``
points at it; the calibration is stored with the emulator's URL as its endpoint, so the DAG's gate,
judging at the real endpoint, never takes it for a real one. Without the flag this is exactly
``judgeflow calibrate``. Every other argument is passed through (``--rubric``, ``--settings``, ``--url``).
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from judgeflow.rubrics.commands import calibrate_main

    args = list(sys.argv[1:] if argv is None else argv)
    if "--emulator" not in args:
        return calibrate_main(args)
    args.remove("--emulator")
    from judgeflow_devkit.emulator import EmulatorConfig, EmulatorServer

    variable = "AIRFLOW_CONN_ANTHROPIC_DEFAULT"
    saved = {name: os.environ.get(name) for name in (variable, "NO_PROXY", "no_proxy")}
    with EmulatorServer(EmulatorConfig(latency_median_s=0.02)) as emulator:
        print(f"--emulator: judging with the local Messages API emulator at {emulator.url}")
        os.environ[variable] = json.dumps({"conn_type": "anthropic", "password": "calibrate-key", "host": emulator.url})
        no_proxy = ",".join(filter(None, [saved["NO_PROXY"], "127.0.0.1", "localhost"]))
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = no_proxy
        try:
            return calibrate_main(args)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
