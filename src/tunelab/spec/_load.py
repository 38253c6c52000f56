"""Loading a spec: a YAML file, a mapping or a Spec in; a validated :class:`Spec` out.

Example:
    >>> spec = load_spec({"data": {"source": "iris"}, "model": {"name": "mlp"}},
    ...                  overrides=["train.epochs=3"])
    >>> spec.train.epochs
    3
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tunelab.errors import SpecError
from tunelab.spec._errors import format_errors
from tunelab.spec._overrides import apply_overrides
from tunelab.spec._tree import Spec
from tunelab.spec._yaml import describe_type, plain, read_yaml

__all__ = ["load_spec", "parse_spec", "dump_spec"]


def load_spec(
    source: str | Path | Mapping[str, Any] | Spec, *, overrides: Iterable[str] = ()
) -> Spec:
    """Load and validate a spec from a YAML file, a mapping or a Spec, then apply overrides.

    Args:
        source: path to a YAML file, a mapping with the same tree, or a Spec.
        overrides: ``"dotted.path=value"`` strings; values are parsed as YAML scalars.

    Paths in the spec that name the user's files (``model: {name: ./mymodels.py:Net}``) are
    relative to the spec file's folder (the working directory for a mapping).

    Raises:
        SpecError: the file is missing or unreadable, or the tree is invalid.
    """
    base = None
    if isinstance(source, Spec):
        raw: Any = source.model_dump(mode="json")
    elif isinstance(source, Mapping):
        raw = plain(source)
    elif isinstance(source, (str, Path)):
        raw = read_yaml(Path(source))
        base = Path(source).parent
    else:
        raise SpecError(
            f"a spec is a YAML file path, a mapping or a Spec; got {describe_type(source)}"
        )
    raw = apply_overrides(raw, overrides)
    return parse_spec(raw, base=base)


def parse_spec(raw: Any, *, base: Path | None = None) -> Spec:
    """Validate a raw tree (already loaded from YAML) into a Spec; ``base``: the spec's folder."""
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"a spec is a mapping with keys such as data, model, train; got {describe_type(raw)}"
        )
    try:
        return Spec.model_validate(raw, context={"spec_dir": base})
    except ValidationError as exc:
        raise SpecError(format_errors(exc, raw)) from None


def dump_spec(spec: Spec) -> str:
    """The resolved spec as YAML (every default filled in), ready to re-run; settings that do
    not apply are left out (see :func:`applied`)."""
    return yaml.safe_dump(applied(spec), sort_keys=False, default_flow_style=None)


def applied(spec: Spec) -> dict:
    """``spec.model_dump(mode="json")`` without the settings that do not apply: ``split.val``
    under cross-validation, ``split.cv.repeats`` unless ``kind: repeated``. Resume compares
    these (a value that does not apply cannot make two specs differ)."""
    raw = spec.model_dump(mode="json")
    split = raw["split"]
    if split.get("cv") is not None:
        split.pop("val", None)
        if split["cv"].get("kind") != "repeated":
            split["cv"].pop("repeats", None)
    return raw
