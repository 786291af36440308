"""Rubric loading, validation, identity (content hash, version key) and the weighted overall score."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from judgeflow.errors import ConfigError
from judgeflow.rubric import Rubric, load_rubric, parse_rubric
from tests.support import ROOT

RUBRIC_DIR = ROOT / "include" / "rubrics"
HELPFULNESS = RUBRIC_DIR / "helpfulness.yaml"

MINIMAL = """\
name: tiny
version: 2
instructions: Judge it.
criteria:
  - name: accuracy
    description: Is it right?
  - name: tone
    description: Is it kind?
"""


@pytest.fixture(scope="module")
def helpfulness() -> Rubric:
    return load_rubric(RUBRIC_DIR, "helpfulness")


def test_helpfulness_loads_with_its_criteria_weights_and_scale(helpfulness: Rubric) -> None:
    assert helpfulness.name == "helpfulness"
    assert helpfulness.version == "1"
    assert helpfulness.model == "claude-haiku-4-5"
    assert (helpfulness.scale.min, helpfulness.scale.max) == (1, 5)
    assert helpfulness.criterion_names == ["accuracy", "tone", "completeness"]
    assert [c.weight for c in helpfulness.criteria] == [0.5, 0.2, 0.3]
    assert all(sorted(c.levels) == [1, 2, 3, 4, 5] for c in helpfulness.criteria)


def test_version_key_is_version_plus_twelve_hex_of_the_hash(helpfulness: Rubric) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", helpfulness.content_hash)
    assert re.fullmatch(r"1\+[0-9a-f]{12}", helpfulness.version_key)
    assert helpfulness.version_key == f"1+{helpfulness.content_hash[:12]}"


def test_hash_is_stable_across_loads(helpfulness: Rubric) -> None:
    again = parse_rubric(HELPFULNESS.read_text(encoding="utf-8"))
    assert again.content_hash == helpfulness.content_hash


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "Is every factual claim correct",
            "Is each factual claim correct",
            id="criterion-description",
        ),
        pytest.param("weight: 0.2", "weight: 0.25", id="weight"),
        pytest.param("      5: Warm, respectful", "      5: Warm and respectful", id="level-text"),
        pytest.param("grading answers", "grading replies", id="instructions"),
        pytest.param("model: claude-haiku-4-5", "model: claude-sonnet-4-5", id="model"),
        pytest.param("scale: {min: 1, max: 5}", "scale: {min: 1, max: 4}", id="scale"),
    ],
)
def test_any_content_edit_changes_the_hash_even_without_a_version_bump(helpfulness: Rubric, old: str, new: str) -> None:
    text = HELPFULNESS.read_text(encoding="utf-8")
    assert old in text
    edited = parse_rubric(text.replace(old, new, 1))
    assert edited.version == helpfulness.version
    assert edited.content_hash != helpfulness.content_hash
    assert edited.version_key != helpfulness.version_key


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda t: "# a new comment at the top\n" + t, id="comment-added"),
        pytest.param(lambda t: t.replace("# The default rubric", "# Our default rubric"), id="comment-edited"),
        pytest.param(lambda t: t.replace("\ncriteria:", "\n\n\ncriteria:"), id="blank-lines"),
        pytest.param(lambda t: t.replace("version: 1", "version:    1   # bump me"), id="inline-space"),
        pytest.param(lambda t: t.replace("scale: {min: 1, max: 5}", "scale:\n  min: 1\n  max: 5"), id="flow-to-block"),
    ],
)
def test_comments_and_layout_do_not_change_the_hash(helpfulness: Rubric, edit: Callable[[str], str]) -> None:
    text = HELPFULNESS.read_text(encoding="utf-8")
    edited_text = edit(text)
    assert edited_text != text
    assert parse_rubric(edited_text).content_hash == helpfulness.content_hash


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        pytest.param({"accuracy": 4, "tone": 5, "completeness": 3}, 3.9, id="mixed"),
        pytest.param({"accuracy": 5, "tone": 5, "completeness": 5}, 5.0, id="all-top"),
        pytest.param({"accuracy": 1, "tone": 1, "completeness": 1}, 1.0, id="all-bottom"),
        pytest.param({"accuracy": 1, "tone": 5, "completeness": 5}, 3.0, id="accuracy-weighs-half"),
        pytest.param({"accuracy": 2, "tone": 3, "completeness": 4}, 2.8, id="ascending"),
    ],
)
def test_overall_is_the_weighted_mean(helpfulness: Rubric, scores: dict[str, int], expected: float) -> None:
    assert helpfulness.overall(scores) == expected


def test_overall_rounds_to_four_places() -> None:
    rubric = parse_rubric(MINIMAL.replace("description: Is it kind?", "description: Is it kind?\n    weight: 2"))
    # (1 * 1 + 2 * 2) / 3 = 1.6666...
    assert rubric.overall({"accuracy": 1, "tone": 2}) == 1.6667


def test_defaults_for_model_scale_and_weight() -> None:
    rubric = parse_rubric(MINIMAL)
    assert rubric.model == "claude-haiku-4-5"
    assert (rubric.scale.min, rubric.scale.max) == (1, 5)
    assert [c.weight for c in rubric.criteria] == [1.0, 1.0]
    assert rubric.version_key.startswith("2+")


def test_missing_rubric_file_names_the_path_and_lists_available(tmp_path: Path) -> None:
    (tmp_path / "alpha.yaml").write_text(MINIMAL, encoding="utf-8")
    (tmp_path / "beta.yaml").write_text(MINIMAL, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rubric(tmp_path, "gamma")
    message = str(info.value)
    assert "'gamma'" in message
    assert str(tmp_path / "gamma.yaml") in message
    assert "['alpha', 'beta']" in message


def test_missing_rubric_in_the_shipped_folder_lists_the_shipped_rubrics() -> None:
    with pytest.raises(ConfigError, match=r"available: \['concision', 'faithfulness', 'helpfulness'\]"):
        load_rubric(RUBRIC_DIR, "harmlessness")


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param("name: [unclosed\n", ["not valid YAML"], id="bad-yaml"),
        pytest.param("- just\n- a list\n", ["a rubric is a mapping"], id="not-a-mapping"),
        pytest.param(
            MINIMAL.replace("name: tone", "name: accuracy"),
            ["criteria names must be unique", "accuracy"],
            id="duplicate-criterion",
        ),
        pytest.param(MINIMAL + "scale: {min: 5, max: 5}\n", ["scale", "scale.max (5)"], id="scale-equal"),
        pytest.param(MINIMAL + "scale: {min: 3, max: 1}\n", ["scale", "must be above"], id="scale-inverted"),
        pytest.param(
            MINIMAL.replace("name: tone", "name: Tone-Of-Voice"),
            ["criteria.1.name", "pattern"],
            id="bad-name",
        ),
        pytest.param(
            MINIMAL.replace("name: accuracy", "name: accuracy\n    weight: 0"),
            ["criteria.0.weight", "greater than 0"],
            id="zero-weight",
        ),
        pytest.param(MINIMAL + "colour: blue\n", ["colour", "Extra inputs"], id="unknown-key"),
        pytest.param(MINIMAL.replace("instructions: Judge it.\n", ""), ["instructions"], id="no-instructions"),
        pytest.param("name: tiny\nversion: 1\ninstructions: x\ncriteria: []\n", ["criteria"], id="no-criteria"),
    ],
)
def test_invalid_rubrics_raise_config_error_naming_file_and_field(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    (tmp_path / "broken.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rubric(tmp_path, "broken")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "broken.yaml"))
    for fragment in fragments:
        assert fragment in message


def test_rubric_is_frozen(helpfulness: Rubric) -> None:
    with pytest.raises(ValueError, match="frozen"):
        helpfulness.version = "2"
