"""A rubric's golden set: customer-support items scored by people, to check the judge against.

``<golden_dir>/<rubric>.jsonl`` holds one JSON object per line::

    {"id": "g01", "question": "...", "context": "..." or null, "response": "...",
     "scores": {"accuracy": 5, "tone": 4, "completeness": 5}, "canary": false}

``scores`` are the human raters' scores, one per criterion of the rubric, on its scale. An item
with ``"canary": true`` is a prompt-injection canary: its response tells the judge what to score,
and the judge must not comply. The set is identified by the SHA-256 of the file's bytes, so a
changed golden set starts a new line of calibrations (and of drift comparisons).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgeflow.errors import ConfigError
from judgeflow.records import ResponseItem
from judgeflow.rubric import Rubric


class GoldenItem(BaseModel):
    """One human-scored item."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    question: str
    context: str | None = None
    response: str = Field(min_length=1)
    scores: dict[str, int]
    canary: bool = False

    def as_response(self) -> ResponseItem:
        return ResponseItem(response_id=self.id, question=self.question, context=self.context, response=self.response)


@dataclass(frozen=True, slots=True)
class GoldenSet:
    """The items of one golden file, validated against the rubric, and the file's content hash."""

    rubric_name: str
    path: Path
    digest: str
    items: tuple[GoldenItem, ...]

    @property
    def canaries(self) -> tuple[GoldenItem, ...]:
        return tuple(item for item in self.items if item.canary)


def golden_path(golden_dir: str | Path, rubric_name: str) -> Path:
    return Path(golden_dir) / f"{rubric_name}.jsonl"


def load_golden_set(golden_dir: str | Path, rubric: Rubric) -> GoldenSet | None:
    """The rubric's golden set, or ``None`` when it has no file; a bad file is a :class:`ConfigError`
    naming the line and the problem (a criterion missing, a score off the scale, a repeated id)."""
    path = golden_path(golden_dir, rubric.name)
    if not path.exists():
        return None
    raw = path.read_bytes()
    items: list[GoldenItem] = []
    seen: set[str] = set()
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = _parse_line(path, number, line)
        _check_scores(path, number, item, rubric)
        if item.id in seen:
            raise ConfigError(f"{path}:{number}: id {item.id!r} appears twice")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise ConfigError(f"{path}: no items")
    return GoldenSet(rubric.name, path, hashlib.sha256(raw).hexdigest(), tuple(items))


@dataclass(frozen=True, slots=True)
class Export:
    """What ``judgeflow golden export`` did to a golden file."""

    path: Path
    appended: int
    duplicates: int
    incomplete: int
    kept: int


def append_reviewed(golden_dir: str | Path, rubric: Rubric, reviewed: Sequence[GoldenItem]) -> Export:
    """Append people's labels to the rubric's golden set, as new lines after the existing ones.

    Existing lines (canaries included) are kept byte for byte. An item is a duplicate, and skipped,
    when its id is already in the set or the set already holds the same question, context and
    response (a production response a rater scored before). An item without a score for every
    criterion of the rubric is skipped as incomplete. The result is validated by
    :func:`load_golden_set`, so an export never leaves a file calibration would refuse."""
    path = golden_path(golden_dir, rubric.name)
    existing = load_golden_set(golden_dir, rubric)
    items = existing.items if existing is not None else ()
    ids = {item.id for item in items}
    texts = {_text_key(item) for item in items}
    wanted = set(rubric.criterion_names)
    new: list[GoldenItem] = []
    duplicates = incomplete = 0
    for item in reviewed:
        if item.id in ids or _text_key(item) in texts:
            duplicates += 1
        elif set(item.scores) != wanted:
            incomplete += 1
        else:
            new.append(item)
            ids.add(item.id)
            texts.add(_text_key(item))
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        before = path.read_bytes() if path.exists() else b""
        lead = b"" if not before or before.endswith(b"\n") else b"\n"
        lines = "".join(json.dumps(item.model_dump(), ensure_ascii=False) + "\n" for item in new)
        path.write_bytes(before + lead + lines.encode("utf-8"))
        load_golden_set(golden_dir, rubric)  # the file as calibration will read it
    return Export(path, len(new), duplicates, incomplete, len(items))


def _text_key(item: GoldenItem) -> tuple[str, str, str]:
    return (item.question.strip(), (item.context or "").strip(), item.response.strip())


def _parse_line(path: Path, number: int, line: str) -> GoldenItem:
    try:
        return GoldenItem.model_validate(json.loads(line))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{number}: not valid JSON: {exc}") from exc
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}:{number}: {details}") from exc


def _check_scores(path: Path, number: int, item: GoldenItem, rubric: Rubric) -> None:
    expected = set(rubric.criterion_names)
    if set(item.scores) != expected:
        raise ConfigError(
            f"{path}:{number}: scores must name exactly the criteria {sorted(expected)}, got {sorted(item.scores)}"
        )
    for criterion, score in item.scores.items():
        if not rubric.scale.min <= score <= rubric.scale.max:
            raise ConfigError(
                f"{path}:{number}: {criterion} score {score} is off the scale {rubric.scale.min}..{rubric.scale.max}"
            )
