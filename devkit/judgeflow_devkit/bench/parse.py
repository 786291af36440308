"""``judgeflow-dev bench-parse`` (``make bench-parse``): how long the DAG files take to parse with many suites.

Writes a deployment with N suite files (tables and JSON queries, one or two rubrics, sampled or
not, on a cron or an upstream Asset, each with its own warehouse connection) and times Airflow's
``DagBag`` over ``dags/llm_judge_daily.py`` (the factory) and ``dags/llm_judge_suite_check.py`` (the
check), side by side with one suite. *Warm* is what the DAG processor pays per parse: its parse
processes import Airflow and the DAG file's imports before they parse (``parsing_pre_import_modules``);
*cold* is a fresh interpreter that imports everything first, for comparison. The check is timed with
its source check off, then on against an SQLite warehouse with an empty cache (every suite asked) and a
warm one (every answer cached).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from sqlalchemy import MetaData, create_engine

from judgeflow_devkit import PROJECT_ROOT

DAGS = PROJECT_ROOT / "dags"
FACTORY, CHECK = DAGS / "llm_judge_daily.py", DAGS / "llm_judge_suite_check.py"
QUERY = (
    "SELECT id, logged_at AS created_at, payload ->> 'query' AS question, payload ->> 'answer' AS response, "
    "payload ->> 'passages' AS context, payload ->> 'locale' AS locale FROM search_events WHERE kind = 'answer'"
)


def write_deployment(folder: Path, suites: int) -> Path:
    """An include folder with ``suites`` suite files over shared defaults; returns it."""
    from judgeflow_devkit.sample_data import search_events_table, source_table

    folder.mkdir(parents=True)
    warehouse = folder / "warehouse.sqlite"
    engine = create_engine(f"sqlite:///{warehouse}")
    metadata = MetaData()
    source_table(metadata)
    search_events_table(metadata)
    metadata.create_all(engine)
    engine.dispose()
    include = folder / "include"
    (include / "suites").mkdir(parents=True)
    defaults = {"rubric_dir": str(PROJECT_ROOT / "include" / "rubrics"), "embedded_warehouse_path": str(warehouse)}
    (include / "judgeflow.yaml").write_text(yaml.safe_dump(defaults), encoding="utf-8")
    for i in range(suites):
        (include / "suites" / f"app_{i:03d}.yaml").write_text(yaml.safe_dump(_suite(i)), encoding="utf-8")
    return include


def _suite(i: int) -> dict[str, object]:
    """The i-th suite: every other one reads JSON events with two rubrics, a sample and an upstream Asset."""
    suite: dict[str, object] = {
        "description": f"application {i}",
        "owner": f"team-{i % 7}",
        "tags": [f"team-{i % 7}"],
        "connections": {"warehouse": f"warehouse_{i:03d}", "slack": f"slack_{i:03d}"},
        "budget": {"max_cost_usd_per_day": 10 + i},
    }
    if i % 2:
        suite |= {
            "source": {"query": QUERY, "segment_columns": ["locale"]},
            "rubrics": ["faithfulness", "concision"],
            "sampling": {"rate": 0.1, "by": "locale", "min_per_segment": 20},
            "schedule": {"asset": f"warehouse://logs/app_{i:03d}"},
        }
    return suite


def warm(dag_file: Path, *, repeats: int) -> float:
    """Median seconds of ``DagBag`` over ``dag_file`` in this process, after one parse to warm up."""
    from airflow.dag_processing.dagbag import DagBag

    DagBag(dag_folder=str(dag_file))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(dag_file))
        times.append(time.perf_counter() - started)
    if bag.import_errors and dag_file == FACTORY:
        raise SystemExit(f"the factory did not parse: {bag.import_errors}")
    return statistics.median(times)


def cold(dag_file: Path, env: dict[str, str]) -> float:
    """Seconds for a fresh interpreter to import Airflow and judgeflow and parse ``dag_file``."""
    code = (
        "import time; t = time.perf_counter(); "
        "from airflow.dag_processing.dagbag import DagBag; "
        f"DagBag(dag_folder={str(dag_file)!r}); print(time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev bench-parse", description=__doc__.splitlines()[0])
    parser.add_argument("--suites", type=int, default=50, help="suite files in the big deployment")
    parser.add_argument("--repeats", type=int, default=5, help="warm parses timed (the median is shown)")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)  # a parse logs a line per suite it skips; none is skipped here
    with tempfile.TemporaryDirectory(prefix="judgeflow-bench-parse-") as tmp:
        home = Path(tmp) / "airflow"
        home.mkdir()
        os.environ.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            }
        )
        rows = []
        for n in (1, args.suites):
            include = write_deployment(Path(tmp) / f"n{n}", n)
            os.environ.update({"JUDGEFLOW_INCLUDE_DIR": str(include), "JUDGEFLOW_SOURCE_CHECK_SECONDS": "0"})
            factory_warm = warm(FACTORY, repeats=args.repeats)
            check_warm = warm(CHECK, repeats=args.repeats)
            factory_cold = cold(FACTORY, dict(os.environ))
            os.environ["JUDGEFLOW_SOURCE_CHECK_SECONDS"] = "600"
            tempfile.tempdir = str(Path(tmp) / f"cache{n}")  # an empty source check cache
            Path(tempfile.tempdir).mkdir()
            from airflow.dag_processing.dagbag import DagBag

            started = time.perf_counter()
            DagBag(dag_folder=str(CHECK))
            check_asked = time.perf_counter() - started
            check_cached = warm(CHECK, repeats=args.repeats)
            tempfile.tempdir = None
            rows.append((n, factory_warm, factory_cold, check_warm, check_asked, check_cached))
    print(f"\nDAG file parse times on this machine ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}), seconds")
    print(
        f"{'suites':>7} {'factory warm':>13} {'factory cold':>13} {'check, no source':>17} "
        f"{'check, all asked':>17} {'check, cached':>14}"
    )
    for n, fw, fc, cw, ca, cc in rows:
        print(f"{n:>7} {fw:>13.3f} {fc:>13.3f} {cw:>17.3f} {ca:>17.3f} {cc:>14.3f}")
    (_, one, *_), (n, many, *_) = rows
    print(
        f"\nfactory with {n} suites: {many:.3f} s warm ({many / one:.1f}x one suite, {many / n * 1000:.1f} ms a suite)"
    )
    return 0 if many < 2.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
