"""Suites: one LLM feature's judging (its source, rubrics, schedule, sampling, budget, on-call), from one file.

A deployment's ``include/`` folder holds either

- ``judgeflow.yaml`` alone: the settings of one **default suite** (the layout before suites), whose
  DAG keeps the id ``llm_judge_daily``, so run history, run keys and warehouse rows stay valid; or
- ``suites/<name>.yaml``, one file per suite, each read over the shared defaults in
  ``judgeflow.yaml``: the DAG of suite ``<name>`` is ``llm_judge__<name>``.

A suite file takes every settings key (:class:`~judgeflow.config.Settings`) except the account-wide
ones (:data:`DEPLOYMENT_ONLY`); mappings merge into the defaults key by key, anything else replaces
the default. Relative paths are taken from the folder of the file that sets them.

:func:`discover_suites` reads a whole folder at DAG parse time and never raises for one suite's
problem: it returns the suites that load and, for the others, a :class:`SuiteProblem` naming the
file, the key and what is wrong. It reads files only (YAML and the rubric files' names), never a
connection or the warehouse. :func:`load_suite` reads one suite file, in a task.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeflow.config import (
    Settings,
    absolutize_paths,
    read_settings_file,
    resolve_paths,
    validate_settings,
)
from judgeflow.errors import ConfigError
from judgeflow.rubric import rubric_path

SUITES_DIR = "suites"
DEFAULTS_FILE = "judgeflow.yaml"
LEGACY_SUITE = "default"
LEGACY_DAG_ID = "llm_judge_daily"
DAG_PREFIX = "llm_judge__"
DEPLOYMENT_ONLY = {
    "limits": "the account's rate limits are shared by every suite",
    "prices": "prices are the account's",
}
"""Keys only ``include/judgeflow.yaml`` may set, and why."""
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class Suite:
    """One suite: its name, the file its tasks are given, and its merged, validated settings."""

    name: str
    path: Path
    settings: Settings

    @property
    def legacy(self) -> bool:
        """The default suite of a deployment without ``suites/`` (its file is the whole settings)."""
        return self.path.parent.name != SUITES_DIR

    @property
    def dag_id(self) -> str:
        if self.settings.dag_id:
            return self.settings.dag_id
        return LEGACY_DAG_ID if self.legacy else f"{DAG_PREFIX}{self.name}"

    @property
    def rubrics(self) -> tuple[str, ...]:
        return self.settings.rubric_names

    @property
    def scores_uri(self) -> str:
        """The URI of the Asset this suite's DAG updates: it names the suite and its scores table."""
        return f"judgeflow://{self.name}/judge_scores"

    @property
    def warehouse(self) -> tuple[str, str]:
        """Where its scores go, as far as the files tell: the connection id and the embedded fallback."""
        return (self.settings.connections.warehouse, self.settings.embedded_warehouse_path)


@dataclass(frozen=True, slots=True)
class SuiteProblem:
    """Why a suite file does not load: the file, and ``key: what is wrong``."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class SuiteCatalog:
    """What a deployment's ``include/`` folder defines: the suites that load, and the problems of the rest."""

    include_dir: Path
    suites: tuple[Suite, ...]
    problems: tuple[SuiteProblem, ...]


def load_suite(path: str | Path) -> Suite:
    """The suite a task was given: a file in ``suites/`` over ``../judgeflow.yaml``, or a whole
    settings file (the default suite). Every problem is a :class:`ConfigError` naming file and key."""
    path = Path(path)
    if path.parent.name != SUITES_DIR:
        return _checked(Suite(LEGACY_SUITE, path, _whole_file(path)))
    include = path.parent.parent
    return _load(path, _defaults(include / DEFAULTS_FILE), include)


def discover_suites(include_dir: str | Path) -> SuiteCatalog:
    """Every suite of ``include_dir``; a suite that cannot load becomes a problem, never an exception."""
    include = Path(include_dir)
    files = sorted([*include.glob(f"{SUITES_DIR}/*.yaml"), *include.glob(f"{SUITES_DIR}/*.yml")])
    if not files:
        return _legacy_catalog(include)
    problems: list[SuiteProblem] = []
    try:
        defaults = _defaults(include / DEFAULTS_FILE)
    except ConfigError as exc:  # every suite stands on the defaults: none loads without them
        return SuiteCatalog(include, (), (SuiteProblem(include / DEFAULTS_FILE, _without_path(exc)),))
    loaded: list[Suite] = []
    for path in files:
        try:
            loaded.append(_with_rubrics(_load(path, defaults, include)))
        except ConfigError as exc:
            problems.append(SuiteProblem(path, _without_path(exc)))
    suites = _distinct(loaded, problems)
    return SuiteCatalog(include, tuple(suites), tuple(problems))


def _legacy_catalog(include: Path) -> SuiteCatalog:
    path = include / DEFAULTS_FILE
    try:
        return SuiteCatalog(include, (_with_rubrics(load_suite(path)),), ())
    except ConfigError as exc:
        return SuiteCatalog(include, (), (SuiteProblem(path, _without_path(exc)),))


def _load(path: Path, defaults: dict[str, Any], include: Path) -> Suite:
    name = path.stem
    if not _NAME.match(name):
        raise ConfigError(f"{path}: (file name): a suite's name is its file name: lower case, digits, _ ({name!r})")
    raw = read_settings_file(path)
    for key, why in DEPLOYMENT_ONLY.items():
        if key in raw:
            raise ConfigError(f"{path}: {key}: only {include / DEFAULTS_FILE} may set it ({why})")
    source = raw.get("source")
    if isinstance(source, dict) and "table" in source and "query" in source:
        raise ConfigError(f"{path}: source: set table or query, not both")
    validate_settings(raw, source=str(path))  # a problem of this file is named with this file
    merged = _merge(defaults, absolutize_paths(raw, path.parent))
    settings = resolve_paths(validate_settings(merged, source=f"{path} over {include / DEFAULTS_FILE}"), include)
    return _checked(Suite(name, path, settings))


def _defaults(path: Path) -> dict[str, Any]:
    """The shared defaults, validated on their own and with their relative paths made absolute."""
    if not path.exists():
        return {}
    raw = read_settings_file(path)
    validate_settings(raw, source=str(path))
    return absolutize_paths(raw, path.parent)


def _whole_file(path: Path) -> Settings:
    raw = read_settings_file(path)
    return resolve_paths(validate_settings(raw, source=str(path)), path.parent)


def _merge(defaults: dict[str, Any], suite: dict[str, Any]) -> dict[str, Any]:
    """``suite`` over ``defaults``: mappings merge key by key, anything else replaces. A suite's
    source that names a table or a query drops the other it would inherit."""
    merged = dict(defaults)
    for key, value in suite.items():
        base = merged.get(key)
        if isinstance(value, dict) and isinstance(base, dict):
            base = dict(base)
            if key == "source" and ({"table", "query"} & value.keys()):
                base.pop("table", None)
                base.pop("query", None)
            merged[key] = _merge(base, value)
        else:
            merged[key] = value
    return merged


def _checked(suite: Suite) -> Suite:
    """What one key cannot check alone: the sampling segment is one of the source's segment columns."""
    settings, path = suite.settings, suite.path
    by = settings.sampling.by
    if by is not None and by not in settings.source.segment_columns:
        raise ConfigError(
            f"{path}: sampling.by: {by!r} is not one of source.segment_columns {list(settings.source.segment_columns)}"
        )
    return suite


def _with_rubrics(suite: Suite) -> Suite:
    """At discovery, the suite's rubric files exist (a task loads and validates them when it runs;
    the view and the commands, which may not need them, never check)."""
    settings, path = suite.settings, suite.path
    for name in settings.rubric_names:
        rubric_file = rubric_path(settings.rubric_dir, name)
        if not rubric_file.exists():
            available = sorted(p.stem for p in Path(settings.rubric_dir).glob("*.yaml"))
            key = "rubrics" if settings.rubrics else "rubric"
            raise ConfigError(f"{path}: {key}: no rubric {name!r} (no file {rubric_file}); available: {available}")
    return suite


def _distinct(suites: Iterable[Suite], problems: list[SuiteProblem]) -> list[Suite]:
    """Suites whose DAG id, and whose rubrics within one warehouse, no earlier suite (by file name)
    already has; the others become problems. Scores, alert state and daily rollups are kept per
    rubric in a warehouse, so two suites judging one rubric into one warehouse would mix them."""
    kept: list[Suite] = []
    dag_ids: dict[str, Suite] = {}
    judged: dict[tuple[tuple[str, str], str], Suite] = {}
    for suite in suites:
        twin = next((s for s in kept if s.name == suite.name), None)
        if twin is not None:
            twice = f"(file name): suite {suite.name!r} is defined twice ({twin.path})"
            problems.append(SuiteProblem(suite.path, twice))
            continue
        clash = dag_ids.get(suite.dag_id)
        if clash is not None:
            problems.append(SuiteProblem(suite.path, f"dag_id: {suite.dag_id!r} is used twice (also {clash.path})"))
            continue
        shared = [(r, judged[(suite.warehouse, r)]) for r in suite.rubrics if (suite.warehouse, r) in judged]
        if shared:
            rubric, other = shared[0]
            problems.append(
                SuiteProblem(
                    suite.path,
                    f"rubrics: {rubric!r} already judges suite {other.name!r} ({other.path}) into warehouse "
                    f"connection {suite.warehouse[0]!r}; scores are kept per rubric in a warehouse, so give this "
                    "suite another rubric (a copy under another name) or another warehouse connection",
                )
            )
            continue
        kept.append(suite)
        dag_ids[suite.dag_id] = suite
        judged.update({(suite.warehouse, r): suite for r in suite.rubrics})
    return kept


def _without_path(exc: ConfigError) -> str:
    """A :class:`ConfigError`'s message without its leading ``<file>: ``: the problem names the file itself."""
    text = str(exc)
    head, sep, rest = text.partition(": ")
    return rest if sep and (head.endswith((".yaml", ".yml")) or " over " in head) else text


__all__ = [
    "DAG_PREFIX",
    "DEFAULTS_FILE",
    "LEGACY_DAG_ID",
    "LEGACY_SUITE",
    "SUITES_DIR",
    "Suite",
    "SuiteCatalog",
    "SuiteProblem",
    "discover_suites",
    "load_suite",
]
