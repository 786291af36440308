"""Reply validation: a valid forced tool call becomes a Verdict, anything else an Unscored with a reason."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import TextBlock, ToolUseBlock

from judgeflow.judging.prompt import VERDICT_TOOL_NAME
from judgeflow.judging.verdict import MAX_RATIONALE_CHARS, Unscored, parse_verdict, validate_payload
from judgeflow.records import CriterionScore, Verdict
from judgeflow.rubric import Rubric, load_rubric
from tests.support import ROOT


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric(ROOT / "include" / "rubrics", "helpfulness")


def payload(**overrides: Any) -> dict[str, Any]:
    good: dict[str, Any] = {
        "accuracy": {"score": 4, "rationale": "Correct on the main point."},
        "tone": {"score": 5, "rationale": "Warm."},
        "completeness": {"score": 3, "rationale": "Misses the next step."},
    }
    good.update(overrides)
    return good


def tool_block(data: Any, name: str = VERDICT_TOOL_NAME) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_1", "name": name, "input": data}


def test_valid_tool_use_gives_a_verdict_with_exact_overall(rubric: Rubric) -> None:
    result = parse_verdict([tool_block(payload())], rubric)
    assert result == Verdict(
        criteria={
            "accuracy": CriterionScore(4, "Correct on the main point."),
            "tone": CriterionScore(5, "Warm."),
            "completeness": CriterionScore(3, "Misses the next step."),
        },
        overall=3.9,
    )


def test_sdk_content_blocks_are_accepted(rubric: Rubric) -> None:
    blocks = [
        TextBlock(type="text", text="Let me record it."),
        ToolUseBlock(type="tool_use", id="toolu_1", name=VERDICT_TOOL_NAME, input=payload()),
    ]
    result = parse_verdict(blocks, rubric)
    assert isinstance(result, Verdict)
    assert result.overall == 3.9


def test_extra_fields_are_ignored_and_rationale_is_stripped(rubric: Rubric) -> None:
    data = payload(tone={"score": 2, "rationale": "  Curt.  ", "confidence": 0.9}, note="extra")
    result = parse_verdict([tool_block(data)], rubric)
    assert isinstance(result, Verdict)
    assert result.criteria["tone"] == CriterionScore(2, "Curt.")


def test_long_rationale_is_cut_to_the_limit(rubric: Rubric) -> None:
    result = validate_payload(payload(tone={"score": 3, "rationale": "a" * 5000}), rubric)
    assert isinstance(result, Verdict)
    assert result.criteria["tone"].rationale == "a" * MAX_RATIONALE_CHARS
    assert MAX_RATIONALE_CHARS == 2000


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        pytest.param({k: v for k, v in payload().items() if k != "tone"}, ["misses criteria", "'tone'"], id="missing"),
        pytest.param(payload(tone={"score": 6, "rationale": "x"}), ["'tone'", "6 outside 1..5"], id="above"),
        pytest.param(payload(accuracy={"score": 0, "rationale": "x"}), ["'accuracy'", "0 outside"], id="below"),
        pytest.param(payload(tone={"score": "4", "rationale": "x"}), ["'tone'", "valid integer"], id="string"),
        pytest.param(payload(tone={"score": True, "rationale": "x"}), ["'tone'", "valid integer"], id="bool"),
        pytest.param(payload(tone={"score": 4.0, "rationale": "x"}), ["'tone'", "valid integer"], id="float"),
        pytest.param(payload(tone={"score": None, "rationale": "x"}), ["'tone'", "score"], id="null-score"),
        pytest.param(payload(tone={"rationale": "x"}), ["'tone'", "score", "Field required"], id="no-score"),
        pytest.param(payload(tone={"score": 3}), ["'tone'", "rationale", "Field required"], id="no-rationale"),
        pytest.param(
            payload(completeness={"score": 3, "rationale": ""}),
            ["'completeness'", "rationale"],
            id="empty-why",
        ),
        pytest.param(payload(tone={"score": 3, "rationale": 7}), ["'tone'", "rationale"], id="number-why"),
        pytest.param(payload(tone=4), ["'tone'", "dictionary"], id="bare-score"),
        pytest.param([1, 2, 3], ["verdict is list, not an object"], id="list"),
        pytest.param("4 out of 5", ["verdict is str, not an object"], id="string-input"),
        pytest.param(None, ["verdict is NoneType"], id="none"),
    ],
)
def test_invalid_tool_input_is_unscored_with_a_reason(rubric: Rubric, data: Any, fragments: list[str]) -> None:
    result = parse_verdict([tool_block(data)], rubric)
    assert isinstance(result, Unscored)
    for fragment in fragments:
        assert fragment in result.reason
    assert result.raw_reply == json.dumps(data, ensure_ascii=False)


def test_whitespace_only_rationale_is_unscored(rubric: Rubric) -> None:
    result = validate_payload(payload(tone={"score": 3, "rationale": "   \n "}), rubric)
    assert isinstance(result, Unscored)
    assert "'tone'" in result.reason


@pytest.mark.parametrize(
    "content",
    [
        pytest.param([], id="empty"),
        pytest.param([tool_block(payload(), name="other_tool")], id="other-tool"),
        pytest.param([{"type": "thinking", "thinking": "hmm"}], id="thinking-only"),
        pytest.param(["not a block", 42], id="garbage"),
    ],
)
def test_no_verdict_tool_call_is_unscored(rubric: Rubric, content: list[Any]) -> None:
    result = parse_verdict(content, rubric)
    assert isinstance(result, Unscored)
    assert result.reason == f"no {VERDICT_TOOL_NAME} tool call in the reply"


def test_json_text_reply_is_validated_like_a_tool_input(rubric: Rubric) -> None:
    text = json.dumps(payload())
    split = [{"type": "text", "text": text[:10]}, {"type": "text", "text": text[10:]}]
    result = parse_verdict(split, rubric)
    assert isinstance(result, Verdict)
    assert result.overall == 3.9


def test_json_text_reply_with_a_bad_score_is_unscored(rubric: Rubric) -> None:
    text = json.dumps(payload(tone={"score": 9, "rationale": "x"}))
    result = parse_verdict([{"type": "text", "text": text}], rubric)
    assert isinstance(result, Unscored)
    assert "9 outside 1..5" in result.reason


def test_text_reply_that_is_not_json_is_unscored_and_keeps_the_text(rubric: Rubric) -> None:
    prose = "Overall I would rate this response a 4 out of 5."
    result = parse_verdict([TextBlock(type="text", text=prose)], rubric)
    assert isinstance(result, Unscored)
    assert result.reason.startswith("reply text is not JSON (")
    assert result.raw_reply == prose


def test_tool_call_wins_over_text(rubric: Rubric) -> None:
    content = [{"type": "text", "text": "not json"}, tool_block(payload())]
    assert isinstance(parse_verdict(content, rubric), Verdict)


# Found by mutation testing (docs/mutation.md): each test below failed on a mutant that survived the ones above.


def test_scores_on_both_edges_of_the_scale_are_valid(rubric: Rubric) -> None:
    data = payload(accuracy={"score": 1, "rationale": "Wrong."}, tone={"score": 5, "rationale": "Warm."})
    result = validate_payload(data, rubric)
    assert isinstance(result, Verdict)
    assert (result.criteria["accuracy"].score, result.criteria["tone"].score) == (1, 5)


def test_every_problem_of_a_criterion_is_named_in_the_reason(rubric: Rubric) -> None:
    result = validate_payload(payload(tone={"score": "high"}), rubric)
    assert isinstance(result, Unscored)
    assert result.reason == "criterion 'tone': score: Input should be a valid integer; rationale: Field required"


def test_raw_reply_keeps_non_ascii_text_as_written(rubric: Rubric) -> None:
    data = payload(tone={"score": 9, "rationale": "Très poli, 丁寧"})
    result = validate_payload(data, rubric)
    assert isinstance(result, Unscored)
    assert "Très poli, 丁寧" in result.raw_reply


def test_raw_reply_of_a_blank_rationale_is_the_payload(rubric: Rubric) -> None:
    data = payload(tone={"score": 3, "rationale": "  "})
    result = validate_payload(data, rubric)
    assert isinstance(result, Unscored)
    assert result.raw_reply == json.dumps(data)


def test_raw_reply_of_values_json_cannot_write_is_their_text(rubric: Rubric) -> None:
    import datetime as dt

    when = dt.datetime(2026, 11, 30, 12, 0)
    result = validate_payload([when], rubric)
    assert isinstance(result, Unscored)
    assert result.raw_reply == '["2026-11-30 12:00:00"]'


def test_raw_reply_is_cut_at_20000_characters(rubric: Rubric) -> None:
    long = "x" * 30_000
    as_json = validate_payload(long, rubric)
    assert isinstance(as_json, Unscored)
    assert as_json.raw_reply == json.dumps(long)[:20_000]
    circular: list[Any] = [long]
    circular.append(circular)  # json.dumps refuses it: the raw reply is its repr
    as_repr = validate_payload(circular, rubric)
    assert isinstance(as_repr, Unscored)
    assert as_repr.raw_reply == repr(circular)[:20_000]
    assert len(as_repr.raw_reply) == 20_000


def test_no_tool_call_keeps_the_blocks_as_the_raw_reply(rubric: Rubric) -> None:
    content = [{"type": "thinking", "thinking": "hmm"}]
    result = parse_verdict(content, rubric)
    assert isinstance(result, Unscored)
    assert result.raw_reply == json.dumps(content)


def test_a_text_block_without_text_adds_nothing(rubric: Rubric) -> None:
    content = [{"type": "text"}, {"type": "text", "text": json.dumps(payload())}]
    result = parse_verdict(content, rubric)
    assert isinstance(result, Verdict)


def test_an_object_whose_dump_is_not_a_mapping_is_no_block(rubric: Rubric) -> None:
    class Odd:
        def model_dump(self) -> list[str]:
            return ["tool_use"]

    result = parse_verdict([Odd(), tool_block(payload())], rubric)
    assert isinstance(result, Verdict)
