"""One registry per kind of plug-in: a name, its options class and its builder.

A plug-in is one module: a pydantic options class (a subclass of :class:`Options` whose tag
field, ``name`` or ``source``, is a ``Literal`` of the plug-in's name), a builder, and one
``REGISTRY.register(...)`` line. The spec's unions are built from these registries, so a name
is written once and a typo gets a did-you-mean from every registered name, built-in or not.

Example:
    >>> from typing import Literal
    >>> from tunelab.plugins import MODELS, Options
    >>> class WideOptions(Options):
    ...     '''An MLP with one wide hidden layer.'''
    ...     name: Literal["wide"]
    ...     width: int = 256
    >>> def build_wide(options, *, in_shape, out_features, **_):  # doctest: +SKIP
    ...     ...
    >>> MODELS.register("wide", WideOptions, build_wide)  # doctest: +SKIP
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from tunelab.errors import SpecError, TunelabError, did_you_mean

__all__ = [
    "Options",
    "Plugin",
    "Registry",
    "MODELS",
    "OPTIMIZERS",
    "SCHEDULES",
    "LOSSES",
    "METRICS",
    "SOURCES",
    "AUGMENTATIONS",
    "SAMPLERS",
    "PRUNERS",
    "COMPRESSIONS",
    "KINDS",
    "Fraction",
    "Probability",
    "PositiveFloat",
    "NonNegFloat",
]

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]


class Options(BaseModel):
    """Base of every options class (and of every node of the spec tree): unknown keys refused."""

    # NaN and inf are no setting's value (an `lr: .inf` would train to a non-finite loss)
    model_config = ConfigDict(
        extra="forbid",
        frozen=False,
        protected_namespaces=(),
        allow_inf_nan=False,
        use_attribute_docstrings=True,  # a string under a field is its description
    )


@dataclass(frozen=True)
class Plugin:
    """One registered plug-in. ``extra`` holds kind-specific facts (a metric's direction...)."""

    kind: str
    name: str
    options: type[BaseModel] | None
    build: Callable[..., Any] | None
    summary: str
    origin: str
    module: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def option_fields(self) -> list[tuple[str, str, str, str]]:
        """``(name, type, default, description)`` of each option except the tag field."""
        if self.options is None:
            return []
        rows = []
        for key, info in self.options.model_fields.items():
            if key in ("name", "source"):
                continue
            default = (
                "required"
                if info.is_required()
                else repr(info.get_default(call_default_factory=True))
            )
            rows.append((key, _type_name(info.annotation), default, info.description or ""))
        return rows


class Registry:
    """The plug-ins of one kind, by name.

    Args:
        kind: ``model``, ``optimizer``... as used in messages and ``tunelab plugins``.
        key: the spec field that names the plug-in (``name``; ``source`` for data).
        path: where the kind sits in a spec, for messages (``train.optimizer``).
    """

    def __init__(self, kind: str, *, key: str = "name", path: str = ""):
        self.kind, self.key, self.path = kind, key, path or kind
        self._plugins: dict[str, Plugin] = {}
        self.sealed = False  # set once the spec tree has been built from this registry

    def register(
        self,
        name: str,
        options: type[BaseModel] | None = None,
        build: Callable[..., Any] | None = None,
        *,
        summary: str | None = None,
        **extra: Any,
    ) -> Plugin:
        """Add a plug-in; its options class must tag itself with ``Literal[name, ...]``."""
        if self.sealed and options is not None:
            raise TunelabError(
                f"{self.kind} plug-in {name!r} was registered after the spec was built, so specs "
                f"cannot name it. Register it before `tunelab.spec` is imported, or declare its "
                f"module as an entry point in the group `tunelab.plugins`"
            )
        if name in self._plugins:
            raise TunelabError(
                f"{self.kind} {name!r} is registered twice ({self._plugins[name].origin} and "
                f"{_origin(options, build)}); give the new one another name"
            )
        if options is not None and extra.get("listed", True):
            _check_tag(self, name, options)
        plugin = Plugin(
            kind=self.kind,
            name=name,
            options=options,
            build=build,
            summary=summary or _first_line(options) or _first_line(build),
            origin=_origin(options, build),
            module=_module(options or build),
            extra=dict(extra),
        )
        self._plugins[name] = plugin
        self._plugins = dict(sorted(self._plugins.items(), key=lambda kv: _rank(kv[1])))
        return plugin

    def unregister(self, name: str) -> None:
        """Remove a plug-in that is in no union (a metric, sampler or pruner; tests use this)."""
        plugin = self._plugins[name]
        if plugin.options is not None and self.sealed:
            raise TunelabError(
                f"{self.kind} {name!r} is part of the built spec; it cannot be removed"
            )
        del self._plugins[name]

    def get(self, name: str) -> Plugin:
        """The plug-in called ``name``; a :class:`SpecError` with a did-you-mean otherwise."""
        try:
            return self._plugins[name]
        except KeyError:
            valid = self.names()
            raise SpecError(
                f"`{self.path}`: unknown {self.kind} {name!r}{did_you_mean(name, valid)}; "
                f"valid: {', '.join(valid)}"
            ) from None

    def names(self) -> list[str]:
        """The names a spec can use (internal routes such as user classes left out)."""
        return [n for n, p in self._plugins.items() if p.extra.get("listed", True)]

    def for_options(self, options: type) -> Plugin:
        """The plug-in whose options class is ``options`` (a validated spec node's type)."""
        for plugin in self._plugins.values():
            if plugin.options is options:
                return plugin
        raise TunelabError(f"no {self.kind} plug-in has the options class {options.__name__}")

    def __contains__(self, name: object) -> bool:
        return name in self._plugins

    def __iter__(self) -> Iterator[Plugin]:
        return iter(list(self._plugins.values()))

    def __len__(self) -> int:
        return len(self._plugins)

    def union(
        self,
        *,
        default: str | None = None,
        route: Callable[[Any, Any], str | None] | None = None,
    ) -> Any:
        """The discriminated pydantic union of every registered options class.

        A bare string is shorthand for ``{key: string}``; ``default`` is the tag of a mapping
        without the key; ``route(tag, value)`` gives the tag of an entry that names no plug-in
        (a user class ``pkg.mod:Class``), or None.
        """
        members = [Annotated[p.options, Tag(p.name)] for p in self._plugins.values() if p.options]
        key = self.key

        def pick(value: Any) -> str | None:
            if isinstance(value, str):
                tag = value
            elif isinstance(value, Mapping):
                tag = value.get(key, default)
            else:
                tag = getattr(value, key, None)
            if not isinstance(tag, str):
                tag = None  # a list or number where a name belongs: "needs a name" below
            if route is not None and tag not in self._plugins:
                return route(tag, value) or tag
            return tag

        self.sealed = True
        return Annotated[Union[tuple(members)], Discriminator(pick)]  # noqa: UP007


def _rank(plugin: Plugin) -> int:
    """Built-ins in the order of BUILTIN_MODULES, whatever imported them first; others after."""
    from tunelab.plugins._load import BUILTIN_MODULES

    return (
        BUILTIN_MODULES.index(plugin.module)
        if plugin.module in BUILTIN_MODULES
        else len(BUILTIN_MODULES)
    )


def _check_tag(registry: Registry, name: str, options: type[BaseModel]) -> None:
    info = options.model_fields.get(registry.key)
    tags = typing.get_args(info.annotation) if info is not None else ()
    if info is None or typing.get_origin(info.annotation) is not Literal or name not in tags:
        raise TunelabError(
            f"{registry.kind} plug-in {name!r}: its options class {options.__name__} needs a "
            f"field `{registry.key}: Literal[{name!r}]`"
        )


def _first_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    if obj is None or not doc or (isinstance(obj, type) and doc == (Options.__doc__ or "")):
        return ""
    return " ".join(doc.split("\n\n")[0].split())


def _module(obj: Any) -> str:
    obj = getattr(obj, "func", obj)  # a functools.partial names its function's module
    return getattr(obj, "__module__", "") or ""


def _origin(options: Any, build: Any) -> str:
    module = _module(options or build)
    return "tunelab" if module.startswith("tunelab.") else module


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    for noise in ("typing.", "Annotated[", "pathlib.", "NoneType"):
        text = text.replace(noise, "None" if noise == "NoneType" else "")
    return text


MODELS = Registry("model", path="model.name")
OPTIMIZERS = Registry("optimizer", path="train.optimizer.name")
SCHEDULES = Registry("schedule", path="train.schedule.name")
LOSSES = Registry("loss", path="train.loss.name")
METRICS = Registry("metric", path="train.metrics")
SOURCES = Registry("source", key="source", path="data.source")
AUGMENTATIONS = Registry("augmentation", path="train.augment[].name")
SAMPLERS = Registry("sampler", path="tune.sampler.name")
PRUNERS = Registry("pruner", path="tune.pruner.name")
COMPRESSIONS = Registry("compression", path="tunelab compress --method")

KINDS: dict[str, Registry] = {
    r.kind: r
    for r in (
        MODELS,
        OPTIMIZERS,
        SCHEDULES,
        LOSSES,
        METRICS,
        SOURCES,
        AUGMENTATIONS,
        SAMPLERS,
        PRUNERS,
        COMPRESSIONS,
    )
}
