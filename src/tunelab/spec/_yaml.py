"""Reading YAML safely, copying raw trees within limits, and writing a spec back as YAML.

``yaml.safe_load`` only (no tags run code); a copy of the raw tree stops at MAX_SPEC_VALUES
values and MAX_SPEC_DEPTH levels, so anchor bombs and deep nesting get a message, not a hang.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tunelab.errors import SpecError

__all__ = ["read_yaml", "plain", "describe_type", "MAX_SPEC_VALUES", "MAX_SPEC_DEPTH"]


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise SpecError(f"spec file not found: {path}{hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise SpecError(
            f"spec file {path} is nested too deeply to read; a spec is a small tree of settings"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"spec file {path} is not valid YAML{where}: {problem}") from None
    if raw is None:
        raise SpecError(f"spec file {path} is empty; it needs at least `data` and `model`")
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"spec file {path} must hold a mapping (data:, model:, ...); got {describe_type(raw)}"
        )
    return raw


MAX_SPEC_VALUES = 100_000
MAX_SPEC_DEPTH = 64


def plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars, with every key a string.

    YAML aliases make a small file stand for an exponentially large tree (an "anchor bomb");
    copying it value by value would hang, so the copy stops at MAX_SPEC_VALUES values.
    """
    budget = [MAX_SPEC_VALUES]

    def copy(node: Any, depth: int = 0) -> Any:
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(
                f"the spec is nested more than {MAX_SPEC_DEPTH} levels deep; a spec is a small "
                "tree of settings"
            )
        budget[0] -= 1
        if budget[0] < 0:
            raise SpecError(
                f"the spec expands to more than {MAX_SPEC_VALUES:,} values (YAML anchors and "
                "aliases that repeat each other?); a spec is a small tree of settings"
            )
        if isinstance(node, Mapping):
            return {str(k): copy(v, depth + 1) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [copy(v, depth + 1) for v in node]
        if isinstance(node, Path):
            return str(node)
        return node

    return copy(value)


def describe_type(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
