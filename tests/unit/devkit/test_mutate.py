"""``judgeflow-dev mutate``'s own accounting: statuses, explained survivors, the table (no mutation run here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from judgeflow_devkit import PROJECT_ROOT
from judgeflow_devkit.mutate import MODULES, account, prepare, read_equivalents, read_exit_codes, table

EXIT_CODES = {
    "judging/verdict.py": {
        "judgeflow.judging.verdict.x_a__mutmut_1": 1,  # killed
        "judgeflow.judging.verdict.x_a__mutmut_2": 0,  # survived, explained
        "judgeflow.judging.verdict.x_a__mutmut_10": 0,  # survived, not explained
        "judgeflow.judging.verdict.x_b__mutmut_1": 36,  # timeout
        "judgeflow.judging.verdict.x_b__mutmut_2": 33,  # no tests
        "judgeflow.judging.verdict.x_b__mutmut_3": -11,  # segfault: "suspicious"
        "judgeflow.judging.verdict.x_b__mutmut_4": 3,  # killed (pytest's internal error)
    },
    "judging/prompt.py": {"judgeflow.judging.prompt.x_c__mutmut_1": 1},
}
EQUIVALENTS = {"judgeflow.judging.verdict.x_a__mutmut_2": "None is false like False"}


def test_account_counts_every_status_and_explains_only_listed_survivors() -> None:
    verdict, prompt = account(EXIT_CODES, EQUIVALENTS)
    assert verdict.mutants == 7
    assert dict(verdict.statuses) == {"killed": 2, "survived": 2, "timeout": 1, "no tests": 1, "suspicious": 1}
    assert verdict.explained == ["judgeflow.judging.verdict.x_a__mutmut_2"]
    # in mutmut's numbering order (10 after 2), and a mutant no test reaches needs a test as much as a survivor
    assert verdict.unexplained == [
        "judgeflow.judging.verdict.x_a__mutmut_10",
        "judgeflow.judging.verdict.x_b__mutmut_2",
        "judgeflow.judging.verdict.x_b__mutmut_3",
    ]
    assert (prompt.mutants, prompt.explained, prompt.unexplained) == (1, [], [])


def test_table_has_a_row_per_module_and_a_total() -> None:
    lines = table(account(EXIT_CODES, EQUIVALENTS)).splitlines()
    assert (
        lines[0] == "| module | mutants | killed | survived | timeout | no tests | other | equivalent | unexplained |"
    )
    assert lines[2] == "| judging/verdict.py | 7 | 2 | 2 | 1 | 1 | 1 | 1 | 3 |"
    assert lines[3] == "| judging/prompt.py | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 |"
    assert lines[4] == "| total | 8 | 3 | 2 | 1 | 1 | 1 | 1 | 3 |"


def test_equivalents_are_read_from_the_doc_with_their_reasons(tmp_path: Path) -> None:
    doc = tmp_path / "mutation.md"
    doc.write_text(
        "| mutant | change | reason |\n| --- | --- | --- |\n"
        "| `judgeflow.judging.verdict.x_a__mutmut_2` | `False` → `None` | None is false like False |\n"
        "| not a mutant | x | y |\n",
        encoding="utf-8",
    )
    assert read_equivalents(doc) == EQUIVALENTS
    assert read_equivalents(tmp_path / "missing.md") == {}


def test_an_equivalent_without_a_reason_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "mutation.md"
    doc.write_text("| `judgeflow.judging.verdict.x_a__mutmut_2` | `False` → `None` |  |\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"mutation.md:1: the equivalent mutant .*x_a__mutmut_2 has no reason"):
        read_equivalents(doc)


def test_the_shipped_doc_explains_each_equivalent_once() -> None:
    equivalents = read_equivalents()
    assert equivalents, "docs/mutation.md lists the equivalent mutants"
    text = (PROJECT_ROOT / "docs" / "mutation.md").read_text(encoding="utf-8")
    for name in equivalents:
        assert text.count(f"`{name}`") == 1, name
        match = re.match(r"judgeflow\.(?P<module>[\w.]+?)\.x[_ǁ]", name)  # x_function or xǁClassǁmethod
        assert match, name
        module = match["module"].replace(".", "/") + ".py"
        assert module in MODULES, f"{name} is not in a module judgeflow-dev mutate checks"


def test_exit_codes_are_read_from_mutmuts_meta_files_and_a_missing_one_is_named(tmp_path: Path) -> None:
    meta = tmp_path / "mutants" / "judgeflow" / "judging" / "prompt.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": EXIT_CODES["judging/prompt.py"]}), encoding="utf-8")
    assert read_exit_codes(tmp_path, ["judging/prompt.py"]) == {"judging/prompt.py": EXIT_CODES["judging/prompt.py"]}
    with pytest.raises(SystemExit, match=r"no results for judging/verdict.py .*verdict.py.meta is missing"):
        read_exit_codes(tmp_path, ["judging/verdict.py"])


def test_every_module_and_its_tests_exist() -> None:
    for module, tests in MODULES.items():
        assert (PROJECT_ROOT / "plugins" / "judgeflow" / module).is_file(), module
        for test in tests:
            assert (PROJECT_ROOT / test).is_file(), test


def test_prepare_writes_mutmuts_settings_for_the_chosen_modules(tmp_path: Path) -> None:
    import tomllib

    workdir = tmp_path / "mutate"
    prepare(workdir, ["judging/verdict.py"])
    settings = tomllib.loads((workdir / "pyproject.toml").read_text(encoding="utf-8"))
    assert settings["tool"]["mutmut"]["only_mutate"] == ["judgeflow/judging/verdict.py"]
    assert settings["tool"]["mutmut"]["pytest_add_cli_args_test_selection"] == list(MODULES["judging/verdict.py"])
    assert settings["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]
    assert (workdir / "judgeflow" / "judging" / "verdict.py").is_file()
    assert (workdir / "tests" / "conftest.py").is_file()
    # again: the tests are refreshed, the mutants and settings of the last run are kept
    (workdir / "mutants").mkdir()
    (workdir / "tests" / "stale.py").write_text("", encoding="utf-8")
    prepare(workdir, ["judging/verdict.py"], again=True)
    assert (workdir / "mutants").is_dir()
    assert not (workdir / "tests" / "stale.py").exists()
    assert tomllib.loads((workdir / "pyproject.toml").read_text(encoding="utf-8")) == settings


def test_progress_keeps_every_line_and_one_spinner_frame_a_minute() -> None:
    from judgeflow_devkit.mutate import progress_lines

    times = iter([0.0, 10.0, 59.0, 61.0, 200.0, 210.0, 215.0])
    frames = ["⠋ Running stats", "⠙ Running stats", "    done", "", "⠹ 1/9  🎉 1", "⠸ 2/9  🎉 2", "⠼ 3/9  🎉 3"]
    frames += ["⠴ 8/9  🎉 8", "| module |", "⠦ 9/9  🎉 9"]
    assert list(progress_lines(frames, every_s=60.0, clock=lambda: next(times))) == [
        "Running stats",
        "Running stats",  # the last frame before a line, even within the minute
        "    done",
        "2/9  🎉 2",
        "3/9  🎉 3",
        "8/9  🎉 8",
        "| module |",
        "9/9  🎉 9",  # and the last of all
    ]
