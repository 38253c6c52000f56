"""What ``tunelab plugins`` shows, computed as plain rows (the CLI renders them)."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.errors import TunelabError, did_you_mean
from tunelab.plugins._load import failed_plugins, load_plugins
from tunelab.plugins._registry import KINDS, Plugin

__all__ = ["PluginRow", "list_plugins", "find_plugin", "failed_plugins"]


@dataclass(frozen=True)
class PluginRow:
    kind: str
    name: str
    summary: str
    options: str  # ``key=default, ...``
    origin: str


def _row(plugin: Plugin) -> PluginRow:
    options = ", ".join(f"{key}={default}" for key, _, default, _ in plugin.option_fields())
    return PluginRow(plugin.kind, plugin.name, plugin.summary, options, plugin.origin)


def list_plugins(kind: str | None = None) -> list[PluginRow]:
    """Every listed plug-in of every kind (or of one kind), built-ins first."""
    load_plugins()
    import tunelab.spec  # noqa: F401  (the tree's own checks: metrics, samplers...)

    if kind is not None and kind not in KINDS:
        raise TunelabError(
            f"unknown plug-in kind `{kind}`{did_you_mean(kind, KINDS)}; kinds: {', '.join(KINDS)}"
        )
    kinds = [KINDS[kind]] if kind else list(KINDS.values())
    return [_row(p) for registry in kinds for p in registry if p.name in registry.names()]


def find_plugin(dotted: str) -> Plugin:
    """``model.cnn`` -> that plug-in; a did-you-mean over every ``kind.name`` otherwise."""
    load_plugins()
    kind, _, name = dotted.partition(".")
    everything = [f"{r.kind}.{n}" for r in KINDS.values() for n in r.names()]
    registry = KINDS.get(kind)
    if registry is None or name not in registry.names():
        raise TunelabError(
            f"unknown plug-in `{dotted}`{did_you_mean(dotted, everything)}; "
            "`tunelab plugins` lists them all"
        )
    return registry.get(name)
