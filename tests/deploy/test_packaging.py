"""What the install leaves behind: the wheel the image installs, and what Airflow's plugin loader finds.

CI runs these on a fresh clone right after ``make`` installed it, the same state a new user is in
after ``make demo``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support import ROOT


def test_the_wheel_holds_the_library_and_no_dev_kit(tmp_path: Path) -> None:
    """The production image installs this wheel: the emulator, stack test, benches, sample data,
    Slack receiver and demo must not be in it."""
    uv = Path(sys.executable).with_name("uv")
    built = subprocess.run(
        [str(uv), "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("judgeflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    modules = {n for n in names if n.endswith(".py")}

    assert "judgeflow/tasks/pipeline.py" in modules and "judgeflow/ui/plugin.py" in modules
    assert not [n for n in names if n.startswith("judgeflow_devkit")]
    dev_words = ("emulator", "stack", "bench", "sample", "slack_receiver", "demo")
    assert not [m for m in modules if any(word in m for word in dev_words)], sorted(modules)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "judgeflow = judgeflow.cli:main" in text and "judgeflow-dev" not in text


def test_airflow_finds_the_plugin_once_with_no_import_error() -> None:
    """An editable install that leaves ``plugins/judgeflow.egg-info`` makes Airflow see the package
    twice (the entry point, and the egg-info on the plugins path): the UI then shows a red
    "1 Plugin Import Error". Checked the way the api-server loads plugins."""
    assert not list((ROOT / "plugins").glob("*.egg-info")), "the install wrote metadata into plugins/"
    code = (
        "import json; from airflow import plugins_manager as pm; plugins, errors = pm._get_plugins(); "
        "print(json.dumps({'names': [p.name for p in plugins], 'errors': errors}))"
    )
    env = {
        **os.environ,
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])

    assert found["names"].count("judgeflow") == 1, found
    assert found["errors"] == {}, found


def test_the_airflow_plugins_command_lists_judgeflow_once() -> None:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    airflow = str(Path(sys.executable).with_name("airflow"))
    result = subprocess.run(
        [airflow, "plugins", "--output", "json"], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [p["name"] for p in listed].count("judgeflow") == 1, listed
