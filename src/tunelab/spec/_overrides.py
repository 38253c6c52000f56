"""``--set dotted.path=value`` overrides, applied to the raw tree before validation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from tunelab.errors import SpecError
from tunelab.spec._errors import valid_keys
from tunelab.spec._yaml import plain

__all__ = ["apply_overrides", "set_values"]


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a copy of a raw spec tree.

    Values are YAML scalars (``3`` is an int, ``1e-3`` a float, ``[1, 2]`` a list, ``null``
    None). A segment that is an integer indexes a list. Setting a key under a shorthand string
    (``optimizer: adam``) expands it to ``{name: adam}`` first.
    """
    pairs: dict[str, Any] = {}
    for item in overrides:
        path, sep, text = item.partition("=")
        if not sep or not path.strip() or any(not k for k in path.strip().split(".")):
            raise SpecError(
                f"an override is `dotted.path=value`, e.g. train.epochs=3; got {item!r}"
            )
        pairs[path.strip()] = _yaml_scalar(text, item)
    return set_values(raw, pairs)


def set_values(raw: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a raw spec tree with ``{dotted.path: value}`` applied in order.

    Integer segments index lists; a shorthand string (``optimizer: adam``) on the way is
    expanded to ``{name: adam}``; setting ``name``/``source`` to another variant keeps only
    the keys that variant accepts.
    """
    tree = plain(raw)
    for path, value in values.items():
        keys = path.split(".")
        node: Any = tree
        for depth, key in enumerate(keys[:-1]):
            node = _child(node, key, keys[: depth + 1])
        _assign(node, keys[-1], plain(value), keys)
    return tree


def _yaml_scalar(text: str, item: str) -> Any:
    try:
        return yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"override {item!r}: the value is not valid YAML ({problem})") from None


def _child(node: Any, key: str, where: list[str]) -> Any:
    if isinstance(node, list):
        index = _index(key, node, where)
        if isinstance(node[index], str):
            node[index] = {"name": node[index]}
        return node[index]
    if not isinstance(node, dict):
        raise SpecError(f"override: `{'.'.join(where[:-1])}` is a value, not a section")
    if isinstance(node.get(key), str):
        node[key] = {("source" if where == ["data"] else "name"): node[key]}
    return node.setdefault(key, {})


def _assign(node: Any, key: str, value: Any, keys: list[str]) -> None:
    if isinstance(node, list):
        node[_index(key, node, keys)] = value
    elif isinstance(node, dict):
        if key in ("name", "source") and key in node and node[key] != value:
            # switching variant (adam -> sgd): keep only the keys the new variant accepts
            loc = tuple(int(k) if k.lstrip("-").isdigit() else k for k in keys[:-1]) + (value,)
            valid = valid_keys(loc, [])
            if valid:
                for stale in [k for k in node if k not in valid]:
                    del node[stale]
        node[key] = value
    else:
        raise SpecError(f"override: `{'.'.join(keys[:-1])}` is a value, not a section")


def _index(key: str, node: list, where: list[str]) -> int:
    if not key.lstrip("-").isdigit() or not -len(node) <= int(key) < len(node):
        raise SpecError(
            f"override: `{'.'.join(where)}` indexes a list of {len(node)} item(s); "
            f"expected an index 0..{len(node) - 1}, got {key!r}"
        )
    return int(key)
