"""Pydantic's validation errors translated into one line each: the dotted path, what is
expected, what was given, and the closest valid key or name."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import BaseModel, Tag, ValidationError

from tunelab.errors import closest, did_you_mean
from tunelab.spec._tree import UNIONS, Spec

__all__ = ["format_errors", "valid_keys"]

_KIND_WORDS = {
    "data": "data source",
    "model": "model",
    "optimizer": "optimizer",
    "schedule": "schedule",
    "loss": "loss",
    "augment": "augmentation",
}


def format_errors(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for err in exc.errors()[:10]:
        keys, node = _raw_path(err["loc"], raw)
        lines.append(_explain(err, keys, node))
    more = len(exc.errors()) - 10
    if more > 0:
        lines.append(f"... and {more} more")
    return "invalid spec:" + ("\n  " if len(lines) > 1 else " ") + "\n  ".join(dict.fromkeys(lines))


def _raw_path(loc: tuple, raw: Any) -> tuple[list[str | int], Any]:
    """The segments of ``loc`` that exist in the raw tree (dropping union tags)."""
    keys: list[str | int] = []
    node: Any = raw
    for seg in loc:
        if (
            isinstance(node, Mapping)
            and seg in node
            or isinstance(node, list)
            and isinstance(seg, int)
            and seg < len(node)
        ):
            keys.append(seg)
            node = node[seg]
        elif isinstance(node, str) and seg not in ("name", "source"):
            continue  # a shorthand string expanded by a validator
        elif node is not None and _is_union_label(seg):
            continue  # a union member label (`constrained-float`, `literal['source']`, ...)
        elif isinstance(node, list) and isinstance(seg, int):
            keys.append(seg)  # an item the input lacks (a tuple that is too short)
            node = None
        elif isinstance(node, Mapping) and node.get("kind", "tfidf") == seg:
            continue  # the tag of a union told apart by kind (data.featurize)
        elif seg in ("[key]",) or not isinstance(seg, str) or _is_tag(seg):
            continue
        else:
            keys.append(seg)  # a key the input does not have (missing / unknown)
            node = None
    return keys, node


def _is_union_label(seg: Any) -> bool:
    return isinstance(seg, str) and (
        not seg.isidentifier() or seg in ("int", "float", "str", "bool", "bytes", "none")
    )


def _is_tag(seg: str) -> bool:
    return seg in _all_tags()


def _all_tags() -> set[str]:
    return {tag for union, _ in UNIONS.values() for tag, _ in _models_in(union) if tag}


def _dotted(keys: list[str | int]) -> str:
    out = ""
    for k in keys:
        k = k if k != "" else '""'  # an empty key is shown, not dropped
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(top level)"


def _explain(err: dict, keys: list[str | int], node: Any) -> str:
    kind, path = err["type"], _dotted(keys)
    got = err.get("input")
    if kind == "extra_forbidden":
        valid = valid_keys(err["loc"][:-1], keys[:-1])
        parent = _dotted(keys[:-1]) + "." if keys[:-1] else ""
        match = closest(str(keys[-1]), valid)  # the key alone: a shared parent is no likeness
        hint = f" (did you mean `{parent}{match}`?)" if match else ""
        listing = f"; valid keys here: {', '.join(valid)}" if valid and not hint else ""
        return f"unknown key `{path}`{hint}{listing}"
    if kind == "missing":
        return f"missing required key `{path}`"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = "source" if keys and keys[-1] == "data" else "name"
        field = "kind" if keys and keys[-1] == "featurize" else field
        word = _KIND_WORDS.get(
            next((str(k) for k in reversed(keys) if isinstance(k, str)), ""), field
        )
        expected = [
            t.strip(" '") for t in (err.get("ctx") or {}).get("expected_tags", "").split(",")
        ]
        listed = _expected_tags(keys)
        expected = [t for t in expected if t and (t in listed or not listed)] or listed
        if kind == "union_tag_not_found":
            return f"`{path}` needs `{field}`: one of {', '.join(expected)}"
        tag = (err.get("ctx") or {}).get("tag")
        return (
            f"`{path}.{field}`: unknown {word} {tag!r}{did_you_mean(str(tag), expected)}; "
            f"valid: {', '.join(expected)}"
        )
    if kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",")]
        return f"`{path}`: expected {expected}; got {got!r}{did_you_mean(str(got), options)}"
    message = err["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    shown = "" if isinstance(got, (Mapping, list)) or "got" in message else f"; got {got!r}"
    where = f"`{path}`: " if keys else ""
    return f"{where}{message[0].lower() + message[1:]}{shown}"


def _expected_tags(keys: list[str | int]) -> list[str]:
    last = next((str(k) for k in reversed(keys) if isinstance(k, str)), "")
    return UNIONS[last][1].names() if last in UNIONS else []


def valid_keys(loc: tuple, keys: list[str | int]) -> list[str]:
    """Field names of the model found at ``loc`` (which still holds union tags)."""
    cls: Any = Spec
    for seg in loc:
        if isinstance(seg, int) or seg == "[key]":
            continue
        if isinstance(cls, type) and issubclass(cls, BaseModel) and seg in cls.model_fields:
            cls = cls.model_fields[seg].annotation
            continue
        cls = _member_for_tag(cls, seg)
        if cls is None:
            return []
    cls = _only_model(cls)
    return list(cls.model_fields) if cls is not None else []


def _models_in(annotation: Any) -> list[tuple[str | None, type[BaseModel]]]:
    """(tag, model) pairs reachable from an annotation through Optional/list/Annotated/Union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(None, annotation)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Annotated:
        tag = next((a.tag for a in args[1:] if isinstance(a, Tag)), None)
        inner = _models_in(args[0])
        return [(tag or t, m) for t, m in inner]
    if origin in (Union, types.UnionType, list, tuple):
        return [pair for a in args for pair in _models_in(a)]
    return []


def _member_for_tag(annotation: Any, tag: str) -> Any:
    for t, model in _models_in(annotation):
        if t == tag:
            return model
    return None


def _only_model(annotation: Any) -> type[BaseModel] | None:
    found = {m for _, m in _models_in(annotation)}
    return found.pop() if len(found) == 1 else None
