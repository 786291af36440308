"""Load and validate a rubric; give it an identity that changes whenever its content does.

A rubric's identity is ``name`` plus ``version_key``: the declared version and a hash of the
parsed content. Editing a rubric without bumping its version still yields a new identity, so
scores made under the old text are never mixed with scores made under the new one.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from judgeflow.errors import ConfigError

DEFAULT_JUDGE_MODEL = "claude-haiku-4-5"


class Scale(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min: int = 1
    max: int = 5

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale.max ({self.max}) must be above scale.min ({self.min})")
        return self


class Criterion(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    description: str
    weight: float = Field(1.0, gt=0)
    levels: dict[int, str] = Field(default_factory=dict, description="what each score means")
    examples: list[dict[str, Any]] = Field(default_factory=list, description="calibrated examples")


class Rubric(BaseModel):
    """A validated rubric. ``content_hash`` and ``version_key`` are derived, never written by hand."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    version: str
    model: str = DEFAULT_JUDGE_MODEL
    scale: Scale = Scale()
    instructions: str
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> str:
        return str(value)

    @model_validator(mode="after")
    def _unique_criteria(self) -> Rubric:
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names):
            raise ValueError(f"criteria names must be unique, got {names}")
        return self

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the parsed rubric: comments and spacing do not count."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def version_key(self) -> str:
        """What ``judge_scores.rubric_version`` holds: declared version + 12 hex of the hash."""
        return f"{self.version}+{self.content_hash[:12]}"

    @property
    def criterion_names(self) -> list[str]:
        return [c.name for c in self.criteria]

    def overall(self, scores: dict[str, int]) -> float:
        """Weighted mean of the criterion scores, on the rubric's scale, rounded to 4 places."""
        total_weight = sum(c.weight for c in self.criteria)
        weighted = sum(c.weight * scores[c.name] for c in self.criteria)
        return round(weighted / total_weight, 4)


def rubric_path(rubric_dir: str | Path, name: str) -> Path:
    return Path(rubric_dir) / f"{name}.yaml"


def load_rubric(rubric_dir: str | Path, name: str) -> Rubric:
    """Load ``<rubric_dir>/<name>.yaml``; every problem is a :class:`ConfigError` naming the file."""
    path = rubric_path(rubric_dir, name)
    if not path.exists():
        available = sorted(p.stem for p in Path(rubric_dir).glob("*.yaml"))
        raise ConfigError(f"rubric {name!r}: no file {path}; available: {available}")
    return parse_rubric(path.read_text(encoding="utf-8"), source=str(path))


def parse_rubric(text: str, *, source: str = "<rubric>") -> Rubric:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a rubric is a mapping with name, version, instructions, criteria")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{source}: {details}") from exc
