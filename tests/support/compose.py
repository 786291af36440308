"""docker-compose.yaml as Compose would run it, without a Docker engine: parsed, then interpolated.

:func:`interpolate` implements Compose's variable syntax (the compose-spec's "Interpolation"):
``$$`` is a literal ``$``; ``${VAR}`` and ``$VAR``; ``${VAR:-default}`` (unset or empty) and
``${VAR-default}`` (unset); ``${VAR:?message}`` and ``${VAR?message}``, which stop Compose with the
message. No kept library does this for Compose files (python-dotenv interpolates ``.env`` files
only, without ``?``), so it is a dozen lines here, used by the tests only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?)([-?])((?:[^{}]|\{[^{}]*\})*))?\}|(\w+))")


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is unset (or empty): Compose refuses to start."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        dollar, name, colon, op, arg, bare = match.groups()
        if dollar:
            return "$"
        if bare:
            return env.get(bare, "")
        current = env.get(name)
        missing = current is None or (colon == ":" and current == "")
        if op == "-":
            return interpolate(arg, env) if missing else str(current)
        if op == "?":
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        return current or ""

    return _VARIABLE.sub(substitute, value)


def render(node: Any, env: Mapping[str, str]) -> Any:
    """Every string of a parsed Compose file, interpolated (keys too, as Compose does)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [render(item, env) for item in node]
    if isinstance(node, dict):
        return {render(key, env): render(value, env) for key, value in node.items()}
    return node


def load(compose_file: Path, env_file: Path) -> dict[str, Any]:
    """The file as ``docker compose --env-file <env_file> config`` would see it (YAML anchors merged)."""
    env = {k: v or "" for k, v in dotenv_values(env_file).items()}
    return dict(render(yaml.safe_load(compose_file.read_text(encoding="utf-8")), env))


def read_env(env_file: Path) -> dict[str, str]:
    return {k: v or "" for k, v in dotenv_values(env_file).items()}
