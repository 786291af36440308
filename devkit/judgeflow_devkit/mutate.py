"""``judgeflow-dev mutate`` (``make mutate``): mutation testing of the modules that carry the promises.

A test suite that passes says little until we know it fails when the code is wrong. mutmut changes
one thing at a time in the code (a ``<`` into ``<=``, a ``+ 1`` into ``+ 2``, a string, a default) and
runs the fast tests that reach the changed function; a change no test notices (a *survivor*) is a
test we are missing, or a change that cannot alter behaviour (an *equivalent* mutant), which
``docs/mutation.md`` explains in one line each. The command prints, per module, the mutants, how many
the tests killed, the survivors, the timeouts, and how many survivors are explained; it exits 1 when a
survivor is neither killed nor explained.

mutmut mutates a copy: the command builds ``.judgeflow/mutate/`` with ``judgeflow`` (from ``plugins/``),
``tests``, ``include`` and ``dags``, and a ``pyproject.toml`` whose ``[tool.mutmut]`` names the modules
and the test files below. There the package is imported as ``judgeflow`` (not ``plugins.judgeflow``),
which is the name mutmut's trampolines record and compare. mutmut learns from one run of the selected
tests which tests reach which function, then runs only those for each mutant.

It is a benchmark-like command, not a CI step: a full run takes tens of minutes on two cores.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from judgeflow_devkit import PROJECT_ROOT

MODULES: dict[str, tuple[str, ...]] = {
    "judging/runner.py": ("tests/unit/judging/test_runner.py",),
    "judging/judge_call.py": ("tests/unit/judging/test_runner.py", "tests/unit/judging/test_message_batches.py"),
    "judging/budget.py": ("tests/unit/judging/test_budget.py",),
    "judging/message_batches.py": ("tests/unit/judging/test_message_batches.py",),
    "judging/verdict.py": ("tests/unit/judging/test_verdict.py",),
    "judging/prompt.py": ("tests/unit/judging/test_prompt.py",),
    "storage/warehouse.py": (
        "tests/unit/storage/test_warehouse.py",
        "tests/unit/storage/test_staging.py",
        "tests/unit/storage/test_warehouse_reads.py",
        "tests/unit/storage/test_sampling.py",
        "tests/unit/storage/test_estimates.py",
        "tests/unit/storage/test_view_reads.py",
        "tests/unit/rubrics/test_versions.py",
    ),
    "quality/alert_state.py": ("tests/unit/quality/test_alert_state.py",),
    "quality/alerts.py": (
        "tests/unit/quality/test_alerts.py",
        "tests/unit/quality/test_alert_payload.py",
        "tests/unit/quality/test_alert_delivery.py",
    ),
}
"""The modules under ``plugins/judgeflow/`` that carry the promises, and the fast tests that guard each."""

DESELECTED: dict[str, str] = {
    "tests/unit/judging/test_runner.py::test_faults_end_every_response_in_exactly_one_record": (
        "it compares the requests the client counted with those the emulator received, with a 0.5 s "
        "timeout: under mutmut's instrumentation on a loaded machine a request can time out before the "
        "emulator reads it, so the clean run fails and mutmut refuses to start"
    ),
}
"""Tests left out of the mutation runs, with why (docs/mutation.md repeats them); ``make test`` runs them."""

STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    2: "interrupted",
    None: "not checked",
    34: "skipped",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "caught by type check",
}
"""mutmut 3.8's exit codes (``mutmut.stats.status_by_exit_code``), read back from its ``.meta`` files.

Anything else (a segfault, a signal) is "suspicious", as mutmut calls it."""

TIMEOUT_MULTIPLIER = 5.0
"""mutmut stops a mutant's tests after ``(their usual time + 1 s) x`` this, and counts a timeout."""

EQUIVALENTS_DOC = PROJECT_ROOT / "docs" / "mutation.md"
WORKDIR = PROJECT_ROOT / ".judgeflow" / "mutate"
_EQUIVALENT_ROW = re.compile(r"^\|\s*`(?P<name>[\w.]+__mutmut_\d+)`\s*\|(?P<rest>.*)\|\s*$")


@dataclass
class ModuleResult:
    """One module's mutants by status, and which survivors are explained and which are not."""

    module: str
    statuses: Counter[str] = field(default_factory=Counter)
    explained: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)

    @property
    def mutants(self) -> int:
        return sum(self.statuses.values())


def account(
    exit_codes_by_module: Mapping[str, Mapping[str, int | None]], equivalents: Mapping[str, str]
) -> list[ModuleResult]:
    """Count each module's mutants by status; a survivor (or a mutant no test reaches) is explained
    only if ``docs/mutation.md`` names it as equivalent."""
    results = []
    for module, exit_codes in exit_codes_by_module.items():
        result = ModuleResult(module)
        for name, code in sorted(exit_codes.items(), key=lambda item: _mutant_sort_key(item[0])):
            status = STATUS_BY_EXIT_CODE.get(code, "suspicious")
            result.statuses[status] += 1
            if status in ("survived", "no tests", "suspicious", "not checked", "interrupted"):
                (result.explained if name in equivalents else result.unexplained).append(name)
        results.append(result)
    return results


def _mutant_sort_key(name: str) -> tuple[str, int]:
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


COLUMNS = ("module", "mutants", "killed", "survived", "timeout", "no tests", "other", "equivalent", "unexplained")


def table(results: Iterable[ModuleResult]) -> str:
    """The survivor table, as Markdown (pasted into docs/mutation.md as it is)."""
    rows = []
    total = ModuleResult("total")
    for result in results:
        rows.append(_row(result))
        total.statuses.update(result.statuses)
        total.explained += result.explained
        total.unexplained += result.unexplained
    rows.append(_row(total))
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join(["---"] + ["---:"] * (len(COLUMNS) - 1)) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _row(result: ModuleResult) -> list[object]:
    s = result.statuses
    named = s["killed"] + s["survived"] + s["timeout"] + s["no tests"]
    return [
        result.module,
        result.mutants,
        s["killed"],
        s["survived"],
        s["timeout"],
        s["no tests"],
        result.mutants - named,
        len(result.explained),
        len(result.unexplained),
    ]


def read_equivalents(doc: Path = EQUIVALENTS_DOC) -> dict[str, str]:
    """The equivalent mutants ``docs/mutation.md`` lists: rows of `` | `name` | change | reason | ``.

    A row without a reason is refused, so an entry cannot be a bare name."""
    equivalents: dict[str, str] = {}
    if not doc.exists():
        return equivalents
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
        match = _EQUIVALENT_ROW.match(line.strip())
        if not match:
            continue
        reason = match["rest"].split("|")[-1].strip()
        if not reason:
            raise SystemExit(f"{doc}:{number}: the equivalent mutant {match['name']} has no reason")
        equivalents[match["name"]] = reason
    return equivalents


def read_exit_codes(workdir: Path, modules: Iterable[str]) -> dict[str, dict[str, int | None]]:
    """Each module's mutant names and exit codes, from the ``.meta`` file mutmut writes beside its copy."""
    exit_codes: dict[str, dict[str, int | None]] = {}
    for module in modules:
        meta = workdir / "mutants" / "judgeflow" / f"{module}.meta"
        if not meta.exists():
            raise SystemExit(f"mutmut wrote no results for {module} ({meta} is missing): see its output above")
        exit_codes[module] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return exit_codes


def prepare(workdir: Path, modules: list[str], *, again: bool = False) -> None:
    """A fresh copy of the package, the tests and their data, with mutmut's settings for ``modules``.

    ``again`` keeps the last run (its mutants and results) and refreshes only the tests and their data."""
    import tomllib

    if workdir.exists() and not again:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    if not again:
        shutil.copytree(PROJECT_ROOT / "plugins" / "judgeflow", workdir / "judgeflow", ignore=ignore)
    for folder in ("tests", "include", "dags"):
        shutil.rmtree(workdir / folder, ignore_errors=True)
        shutil.copytree(PROJECT_ROOT / folder, workdir / folder, ignore=ignore)
    if again:  # the same settings as the last run: a different test selection would void its results
        return
    tests = sorted({test for module in modules for test in MODULES[module]})
    missing = [test for test in tests if not (PROJECT_ROOT / test).exists()]
    if missing:
        raise SystemExit(f"the test files {missing} named in judgeflow_devkit.mutate.MODULES do not exist")
    pytest_options = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]
    settings = {
        "source_paths": ["judgeflow"],
        "only_mutate": [f"judgeflow/{module}" for module in modules],
        "also_copy": ["include/", "dags/"],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", *(f"--deselect={test}" for test in DESELECTED)],
        # A mutant that makes the code loop is stopped after 5x its tests' usual time (mutmut's default,
        # 15x, held each looping runner mutant for minutes); still far above a busy machine's slowdown.
        "timeout_multiplier": TIMEOUT_MULTIPLIER,
    }
    text = "[tool.mutmut]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    text += "\n[tool.pytest.ini_options]\n"
    text += "".join(f"{key} = {json.dumps(value)}\n" for key, value in pytest_options["ini_options"].items())
    (workdir / "pyproject.toml").write_text(text, encoding="utf-8")


def run_mutmut(workdir: Path, max_children: int, mutants: Iterable[str] = ()) -> int:
    """mutmut in its own process, in the copy; the machine's proxies are dropped (tests talk to loopback).

    Named ``mutants`` are checked again even though they have a result (mutmut's rule)."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut), "run", "--max-children", str(max_children), *mutants]
    with subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        assert process.stdout is not None
        for line in progress_lines(_frames(process.stdout)):
            print(line, flush=True)
        return process.wait()


def _frames(stream: IO[bytes]) -> Iterator[str]:
    """mutmut's output cut at both ``\\n`` and the ``\\r`` its spinner redraws with."""
    pending = b""
    while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
        pending += chunk
        *frames, pending = re.split(rb"[\r\n]", pending)
        yield from (frame.decode("utf-8", "replace") for frame in frames)
    if pending:
        yield pending.decode("utf-8", "replace")


SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def progress_lines(
    frames: Iterable[str], *, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic
) -> Iterator[str]:
    """Every line mutmut prints, but its spinner's redraws (ten a second) at most once per ``every_s``
    and the last before any other line: a progress log for a run of tens of minutes, not megabytes."""
    last_shown = -math.inf
    held: str | None = None
    for frame in frames:
        text = frame.rstrip()
        if not text:
            continue
        if text[0] in SPINNER:
            held = text[1:].strip()
            now = clock()
            if now - last_shown >= every_s:
                last_shown = now
                yield held
                held = None
            continue
        if held is not None:
            yield held
            held = None
        yield text
    if held is not None:
        yield held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judgeflow-dev mutate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--module",
        action="append",
        choices=sorted(MODULES),
        help="only this module (repeat for more); all of them by default",
    )
    parser.add_argument("--max-children", type=int, default=2, help="mutmut's parallel test runs (2 cores: 2)")
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument(
        "--report-only", action="store_true", help="print the table of the last run in --workdir, run nothing"
    )
    parser.add_argument(
        "--again",
        action="store_true",
        help="check the last run's unexplained survivors again with the current tests (after adding tests; "
        "a change to the modules needs a full run)",
    )
    parser.add_argument(
        "--only",
        metavar="PATTERN",
        help="with --again: only the survivors whose name matches this fnmatch pattern (e.g. '*read_batch*')",
    )
    parser.add_argument("--show", action="store_true", help="print the diff of every unexplained survivor")
    args = parser.parse_args(argv)
    modules = args.module or list(MODULES)
    equivalents = read_equivalents()
    started = time.monotonic()
    if not args.report_only:
        again: list[str] = []
        if args.again:
            last = account(read_exit_codes(args.workdir, modules), equivalents)
            again = [name for result in last for name in result.unexplained]
            if args.only:
                again = [name for name in again if fnmatch.fnmatchcase(name, args.only)]
            if not again:
                print("no unexplained survivors to check again")
        prepare(args.workdir, modules, again=args.again)
        what = f"{len(again)} survivors again" if args.again else f"{len(modules)} modules"
        print(f"mutating {what} in {args.workdir} with {args.max_children} workers", flush=True)
        code = run_mutmut(args.workdir, args.max_children, again) if again or not args.again else 0
        if code != 0:
            print(f"mutmut run exited with {code}", file=sys.stderr)
            return code
    results = account(read_exit_codes(args.workdir, modules), equivalents)
    print()
    print(table(results))
    if not args.report_only:
        print(f"\nwall time: {time.monotonic() - started:.0f} s with --max-children {args.max_children}")
    unexplained = [name for result in results for name in result.unexplained]
    if unexplained:
        print(f"\n{len(unexplained)} survivors are neither killed nor explained in docs/mutation.md:")
        for name in unexplained:
            print(f"  {name}")
            if args.show:
                mutmut = Path(sys.executable).with_name("mutmut")
                subprocess.call([str(mutmut), "show", name], cwd=args.workdir)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
