"""The JSON Schema of a spec file, for editors (the YAML language server) and checks.

Generated from the spec tree, so it names exactly the plug-ins this installation has: every
field with its description and default, the unions of the registries with the name-only
shorthand (``model: mlp``, ``optimizer: sgd``), ``split.cv: 5`` and ``split.cv: loo``.

Example:
    >>> schema = spec_schema()
    >>> schema["properties"]["train"]["$ref"]
    '#/$defs/TrainSpec'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault

from tunelab.plugins import PRUNERS, SAMPLERS
from tunelab.spec._tree import UNIONS, Spec

__all__ = ["spec_schema", "write_schema", "SCHEMA_ID"]

SCHEMA_ID = "https://tunelab.dev/schema/spec.json"


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a tunelab spec."""
    schema = Spec.model_json_schema(mode="validation", schema_generator=_WithFactories)
    defs = schema["$defs"]
    members: dict[str, tuple[str, list[str]]] = {}  # $ref -> (union key, the registry's names)
    for key, (_union, registry) in UNIONS.items():
        names = registry.names()
        for plugin in registry:
            if plugin.options is None:
                continue
            node = defs[plugin.options.__name__]
            members[f"#/$defs/{plugin.options.__name__}"] = (key, names)
            tag = node["properties"].get(registry.key)
            if tag is not None and "description" not in tag:
                tag["description"] = f"{key}: {plugin.name} ({_first_line(plugin.options)})"
    _shorthands(schema, members)
    user = defs.get("UserModel", {}).get("properties", {}).get("name")
    if user is not None:  # route_model sends only `pkg.mod:Class` (or file.py:Class) there
        user["pattern"] = ":"
    for name, registry in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        names = registry.names()
        defs[f"{name.title()}Spec"]["properties"]["name"]["enum"] = names
        field = defs["TuneSpec"]["properties"][name]  # `sampler: tpe`
        field["anyOf"] = [
            {"$ref": field.pop("$ref")},
            {"type": "string", "enum": names, "description": f"the {name}'s name alone"},
        ]
    cv = defs["SplitSpec"]["properties"]["cv"]
    cv["anyOf"] += [
        {"type": "integer", "minimum": 2, "description": "the number of folds"},
        {"const": "loo", "description": "leave one out"},
    ]
    _describe_objects(schema)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "tunelab spec"
    return schema


class _WithFactories(GenerateJsonSchema):
    """Defaults made by a factory (``optimizer: adam``, ``ci: {...}``) are shown too."""

    def get_default_value(self, schema):
        factory = schema.get("default_factory")
        if factory is None or schema.get("default_factory_takes_data"):
            return super().get_default_value(schema)
        value = factory()
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        return value if value is not None else NoDefault


def _shorthands(node: Any, members: dict[str, tuple[str, list[str]]]) -> None:
    """Each union of a registry also takes its name alone: ``{oneOf: [...]}`` becomes
    ``{anyOf: [{oneOf: [...]}, {enum: names}]}`` (a user class ``pkg.mod:Class`` for model)."""
    if isinstance(node, list):
        for item in node:
            _shorthands(item, members)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _shorthands(value, members)
    refs = [m.get("$ref") for m in node.get("oneOf", ())]
    if not refs or not all(r in members for r in refs):
        return
    key, names = members[refs[0]]
    alone: list[dict[str, Any]] = [
        {"type": "string", "enum": names, "description": f"the {key} plug-in's name alone"}
    ]
    if key == "model":
        alone.append(
            {"type": "string", "pattern": ":", "description": "your class: pkg.module:Class"}
        )
    union = {"oneOf": node.pop("oneOf")}
    node["anyOf"] = [union, *alone]


def _describe_objects(schema: dict[str, Any]) -> None:
    """A field that points at an object gets the object's own description too (an editor shows
    the field's text on hover, and a ``$ref`` alone has none)."""
    defs = schema["$defs"]
    for node in [schema, *defs.values()]:
        for field in node.get("properties", {}).values():
            ref = field.get("$ref") or next(
                (m["$ref"] for m in field.get("anyOf", ()) if "$ref" in m), None
            )
            if "description" not in field and ref and ref.removeprefix("#/$defs/") in defs:
                field["description"] = defs[ref.removeprefix("#/$defs/")].get("description", "")


def _first_line(obj: Any) -> str:
    return (obj.__doc__ or "").strip().split("\n")[0].rstrip(".")


def write_schema(path: Path | str) -> Path:
    """Write :func:`spec_schema` as JSON to ``path``; returns the path."""
    from tunelab._disk import atomic_write

    path = Path(path)
    with atomic_write(path) as f:
        f.write(json.dumps(spec_schema(), indent=2) + "\n")
    return path
