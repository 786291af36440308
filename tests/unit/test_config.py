"""Settings from YAML and DAG params: unknown keys refused by name, paths beside the file, prices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from judgeflow.config import (
    DEFAULT_PRICES,
    JudgeConfig,
    ModelPrice,
    RunParams,
    Settings,
    load_settings,
    parse_run_params,
)
from judgeflow.errors import ConfigError
from tests.support import ROOT


def write(tmp_path: Path, text: str, name: str = "judgeflow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_settings_file_loads_with_the_documented_values() -> None:
    settings = load_settings(ROOT / "include" / "judgeflow.yaml")
    assert settings.rubric == "helpfulness"
    assert settings.rubric_dir == str(ROOT / "include" / "rubrics")
    assert settings.judge == JudgeConfig()
    assert settings.batching.batch_size == 200
    assert settings.cache.ttl_seconds == 30 * 24 * 3600
    assert settings.source.segment_columns == ("topic",)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.judge.concurrency == 16
    assert settings.prices == DEFAULT_PRICES


@pytest.mark.parametrize(
    ("text", "key_path"),
    [
        pytest.param("rubrik: helpfulness\n", "rubrik", id="top-level"),
        pytest.param("judge:\n  concurency: 4\n", "judge.concurency", id="nested"),
        pytest.param(
            "prices:\n  claude-x: {input: 1, output: 2, discount: 3}\n",
            "prices.claude-x.discount",
            id="in-a-price",
        ),
    ],
)
def test_unknown_key_is_refused_naming_the_key_path(tmp_path: Path, text: str, key_path: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert f"{key_path}: Extra inputs are not permitted" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("judge:\n  concurrency: 0\n", "judge.concurrency", id="concurrency-zero"),
        pytest.param("judge:\n  verdict_attempts: 9\n", "judge.verdict_attempts", id="verdict-attempts"),
        pytest.param("batching:\n  max_batches: 5000\n", "batching.max_batches", id="too-many-batches"),
        pytest.param("alerts:\n  alpha: 1.5\n", "alerts.alpha", id="alpha"),
        pytest.param("judge: [1, 2]\n", "judge", id="section-not-a-mapping"),
        pytest.param("rubric: [unclosed\n", "not valid YAML", id="bad-yaml"),
    ],
)
def test_bad_values_are_config_errors_naming_the_field(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_settings(write(tmp_path, text))


def test_missing_settings_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_settings_file_that_is_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(write(tmp_path, "just a string\n"))


def test_relative_paths_are_resolved_beside_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(
        folder,
        "rubric_dir: rubrics\nembedded_warehouse_path: ../data/wh.sqlite\n"
        "cache:\n  embedded_path: cache/verdicts.sqlite\n",
    )
    settings = load_settings(path)
    assert settings.rubric_dir == str(folder.resolve() / "rubrics")
    assert settings.embedded_warehouse_path == str(tmp_path.resolve() / "data" / "wh.sqlite")
    assert settings.cache.embedded_path == str(folder.resolve() / "cache" / "verdicts.sqlite")


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "rubrics"
    settings = load_settings(write(tmp_path, f"rubric_dir: {target}\n"))
    assert settings.rubric_dir == str(target)


def test_overrides_replace_file_values(tmp_path: Path) -> None:
    path = write(tmp_path, "rubric: helpfulness\njudge:\n  concurrency: 4\n")
    settings = load_settings(path, overrides={"rubric": "tone", "judge": {"max_attempts": 2}})
    assert settings.rubric == "tone"
    assert settings.judge.max_attempts == 2


def test_settings_are_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        Settings().rubric = "other"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("claude-haiku-4-5", DEFAULT_PRICES["claude-haiku-4-5"], id="exact"),
        pytest.param("claude-haiku-4-5-20251001", DEFAULT_PRICES["claude-haiku-4-5"], id="dated-haiku"),
        pytest.param("claude-sonnet-4-5-20250929", DEFAULT_PRICES["claude-sonnet-4-5"], id="dated-sonnet"),
        pytest.param("claude-opus-4-5", DEFAULT_PRICES["claude-opus-4-5"], id="opus"),
    ],
)
def test_price_for_matches_dated_ids_by_prefix(model: str, expected: ModelPrice) -> None:
    assert Settings().price_for(model) == expected


def test_price_for_prefers_the_longest_matching_name() -> None:
    special = ModelPrice(input=9.0, output=9.0)
    settings = Settings(prices={**DEFAULT_PRICES, "claude-haiku-4-5-20251001": special})
    assert settings.price_for("claude-haiku-4-5-20251001") == special
    assert settings.price_for("claude-haiku-4-5-20990101") == DEFAULT_PRICES["claude-haiku-4-5"]


@pytest.mark.parametrize(
    "model",
    [
        pytest.param("gpt-4o", id="other-vendor"),
        pytest.param("claude-haiku-4", id="shorter"),
        pytest.param("claude-haiku-4-50", id="no-dash-after-prefix"),
        pytest.param("claude-haiku-4-5x", id="suffix-without-dash"),
    ],
)
def test_price_for_unknown_model_is_a_config_error(model: str) -> None:
    with pytest.raises(ConfigError, match=f"no price for model {model!r}"):
        Settings().price_for(model)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({}, RunParams(), id="empty"),
        pytest.param({"rubric": "", "limit": ""}, RunParams(), id="blank-is-none"),
        pytest.param({"rubric": "null", "limit": "null"}, RunParams(), id="null-string-is-none"),
        pytest.param(
            {"rubric": "tone", "limit": "25", "rescore": True},
            RunParams(rubric="tone", limit=25, rescore=True),
            id="values",
        ),
        pytest.param({"rubric": None, "dry_run": True}, RunParams(dry_run=True), id="dry-run"),
        pytest.param({"rubric": None, "owner": "x"}, RunParams(), id="other-params-ignored"),
        pytest.param({"mode": "batch"}, RunParams(mode="batch"), id="mode"),
    ],
)
def test_parse_run_params(params: dict[str, Any], expected: RunParams) -> None:
    assert parse_run_params(params) == expected


@pytest.mark.parametrize("limit", [pytest.param(0, id="zero"), pytest.param(-3, id="negative")])
def test_parse_run_params_rejects_a_limit_below_one(limit: int) -> None:
    with pytest.raises(ConfigError, match=r"DAG params: limit: Input should be greater than or equal to 1"):
        parse_run_params({"limit": limit})


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="mode"):
        parse_run_params({"mode": "live"})
