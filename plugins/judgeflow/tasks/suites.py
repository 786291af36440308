"""What the DAG files need to know about the deployment's suites, at parse time.

- :func:`include_dir`: where the suites are, a deployment-layout setting like Airflow's DAGs
  folder: ``$JUDGEFLOW_INCLUDE_DIR``, else ``include/`` beside the DAGs folder. It is read when the
  DAG file is parsed; each task then gets its suite's file as an argument, never from the
  environment of the worker that runs it.
- :func:`suites`: the suites that load (files only: no connection, no warehouse);
- :func:`scores_asset`, :func:`schedule_of`, :func:`suite_doc`: a suite's Asset, schedule and doc;
- :func:`check_suites`: every problem of every suite, raised as one :class:`SuiteConfigError`.

Why two DAG files. Airflow keeps one import error per DAG file and marks every DAG of a file that
has one stale, so a suite that raised in the factory file would stop every other suite with it.
``dags/llm_judge_daily.py`` therefore builds the suites that load and skips the rest, and
``dags/llm_judge_suite_check.py``, which defines no DAG, raises the problems of the others: the
import error names the file, the key and what is wrong while every other suite runs.

**The source check.** A missing table or column is a problem the files cannot show. The check file
asks each suite's warehouse (reflect the table, or run the query with ``WHERE 1 = 0``), but the
DAG processor parses every few seconds and Airflow's best practice is to leave databases alone at
parse time, so the check is cheap: its answers are cached in a file for
``$JUDGEFLOW_SOURCE_CHECK_SECONDS`` (600 by default; ``0`` turns the check off), a warehouse that
does not answer within the time box is skipped (not reported: unknown is not broken), and the
factory file never touches a warehouse. ``extract_responses`` checks again at run time and fails
with the same message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from judgeflow.errors import ConfigError, JudgeflowError
from judgeflow.suite import Suite, SuiteProblem, discover_suites

log = logging.getLogger(__name__)

INCLUDE_ENV = "JUDGEFLOW_INCLUDE_DIR"
SOURCE_CHECK_ENV = "JUDGEFLOW_SOURCE_CHECK_SECONDS"
SOURCE_CHECK_TTL_S = 600.0
SOURCE_CHECK_BUDGET_S = 10.0
"""The most one parse of the check file spends asking warehouses; the rest wait for the next parse."""
CONNECT_BOX_S = 5.0
"""How long one warehouse may take to answer before the check skips it."""


class SuiteConfigError(ConfigError):
    """One or more suite files cannot load; the message lists each file, key and problem."""


def include_dir(dag_file: str) -> Path:
    """``$JUDGEFLOW_INCLUDE_DIR``, else ``include/`` beside the folder of ``dag_file``."""
    named = os.environ.get(INCLUDE_ENV)
    return Path(named) if named else Path(dag_file).resolve().parents[1] / "include"


def suites(include: Path) -> tuple[Suite, ...]:
    """The suites of ``include`` that load; the others are logged (and raised by the check file)."""
    catalog = discover_suites(include)
    for problem in catalog.problems:
        log.warning("judgeflow suite skipped: %s", problem)
    return catalog.suites


def scores_asset(suite: Suite) -> Any:
    """The Asset a suite's DAG updates when a run's scores are in: ``judgeflow://<suite>/judge_scores``."""
    from airflow.sdk import Asset

    return Asset(uri=suite.scores_uri, name=f"judgeflow.{suite.name}.scores", group="judgeflow")


def schedule_of(suite: Suite) -> Any:
    """The DAG's schedule: a cron or preset, the upstream Asset (the application's log load), or None."""
    from judgeflow.config import UpstreamAsset

    schedule = suite.settings.schedule
    if isinstance(schedule, UpstreamAsset):
        from airflow.sdk import Asset

        return Asset(uri=schedule.asset, name=schedule.name or schedule.asset)
    return schedule


def suite_doc(suite: Suite) -> str:
    """The suite's part of the DAG's ``doc_md``: what it judges, where from, how, who owns it."""
    settings = suite.settings
    source = settings.source
    origin = "a query (`source.query`)" if source.query else f"table `{source.table}`"
    sampling = settings.sampling
    sample = "every response"
    if sampling.active:
        strata = f" by `{sampling.by}`, at least {sampling.min_per_segment} each" if sampling.by else ""
        sample = f"{sampling.rate:.0%}{strata}"
    schedule = schedule_of(suite)
    when = f"Asset `{schedule.uri}`" if hasattr(schedule, "uri") else f"`{schedule}`"
    return "\n".join(
        [
            f"#### Suite `{suite.name}`" + (f": {settings.description}" if settings.description else ""),
            "",
            f"**File:** `{suite.path.name}`. **Owner:** {settings.owner}. **Schedule:** {when}.",
            f"**Source:** {origin} in `{settings.connections.warehouse}`. **Rubrics:** "
            + ", ".join(f"`{r}`" for r in suite.rubrics)
            + f". **Sample:** {sample}. **On-call:** `{settings.connections.slack}`.",
            f"**Scores Asset:** `{suite.scores_uri}` (an event per run: rubric versions, rows written, means).",
        ]
    )


def check_suites(include: Path) -> None:
    """Raise every problem of every suite of ``include`` as one :class:`SuiteConfigError`, if any."""
    catalog = discover_suites(include)
    problems = [*catalog.problems, *source_problems(catalog.suites)]
    if problems:
        lines = "\n".join(f"- {p}" for p in problems)
        raise SuiteConfigError(
            f"judgeflow: {len(problems)} suite problem(s) in {include}; the DAGs of every other suite load:\n{lines}"
        )


# --- the source check --------------------------------------------------------------------------


def source_problems(suites: Iterable[Suite], *, cache_path: Path | None = None) -> list[SuiteProblem]:
    """Missing tables and columns, from the cache when fresh, else asked within the time box."""
    ttl = float(os.environ.get(SOURCE_CHECK_ENV, SOURCE_CHECK_TTL_S))
    if ttl <= 0:
        return []
    path = cache_path or Path(tempfile.gettempdir()) / "judgeflow" / "source-checks.json"
    cache = _read_cache(path)
    started, now, problems = time.monotonic(), time.time(), []
    for suite in suites:
        try:
            url = _warehouse_target(suite)
        except JudgeflowError as exc:
            problems.append(SuiteProblem(suite.path, str(exc)))
            continue
        key = _cache_key(suite, url if isinstance(url, str) else url.url.render_as_string(hide_password=True))
        entry = cache.get(key)
        if entry is None or now - float(entry["at"]) >= ttl:
            if time.monotonic() - started > SOURCE_CHECK_BUDGET_S:
                log.info("source check of suite %s left for the next parse (time box spent)", suite.name)
                continue
            answered, problem = _boxed(lambda s=suite, u=url: _check_source(s, u), CONNECT_BOX_S)
            if not answered:
                log.warning("source check of suite %s: no answer in %.0f s", suite.name, CONNECT_BOX_S)
                continue
            entry = cache[key] = {"at": now, "problem": problem}
        if entry["problem"]:
            problems.append(SuiteProblem(suite.path, str(entry["problem"])))
    _write_cache(path, cache)
    return problems


def _warehouse_target(suite: Suite) -> Any:
    """The suite's warehouse: a URL, or (Snowflake, BigQuery, ...) the engine its provider's hook builds
    (an engine connects only when used: building it costs no round trip)."""
    from judgeflow.connections import warehouse_target

    settings = suite.settings
    return warehouse_target(settings.connections.warehouse, embedded_path=settings.embedded_warehouse_path)


def _check_source(suite: Suite, url: Any) -> str | None:
    """``None`` when the source has every column the suite names, else ``key: what is wrong``."""
    from judgeflow.errors import WarehouseError
    from judgeflow.storage.engine import warehouse_engine
    from judgeflow.storage.warehouse import Warehouse

    engine = warehouse_engine(url)
    try:
        warehouse = Warehouse(engine, suite.settings.source)
        by = suite.settings.sampling.by
        if by and by not in warehouse.segment_names():
            return f"sampling.by: the source has no column {by!r}"
        return None
    except ConfigError as exc:
        return str(exc)
    except WarehouseError as exc:
        log.warning("source check of suite %s could not reach the warehouse: %s", suite.name, exc)
        raise
    finally:
        engine.dispose()


def _boxed(check: Any, seconds: float) -> tuple[bool, str | None]:
    """Run ``check`` in a daemon thread: (answered, its result); a hung connect never holds the parse."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["problem"] = check()
        except Exception as exc:  # unreachable or unexpected: unknown, which is not broken
            result["error"] = exc

    thread = threading.Thread(target=target, name="judgeflow-source-check", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive() or "error" in result:
        return False, None
    return True, result.get("problem")


def _cache_key(suite: Suite, url: str) -> str:
    source = suite.settings.source.model_dump_json()
    material = "\x1f".join([str(suite.path), url, source, str(suite.settings.sampling.by)])
    return hashlib.sha256(material.encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    """Best effort: a read-only temp folder costs a check per parse, never a failed parse."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.{os.getpid()}")
        scratch.write_text(json.dumps(cache), encoding="utf-8")
        scratch.replace(path)
    except OSError as exc:
        log.debug("could not write the source check cache %s: %s", path, exc)
