"""The search space: parsed and checked against the spec once, then sampled per trial.

Each entry of ``tune.space`` is a dotted path of the spec and either a list of choices or a
range ``{low, high, log, step}``. An entry with ``when: {path: value}`` is sampled only when
that path (another entry or the base spec) has that value, e.g. momentum only for sgd.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from tunelab.errors import SpecError
from tunelab.spec import SpaceChoice, SpaceRange, Spec, TuneSpec, parse_spec, set_values

__all__ = [
    "Param",
    "parse_space",
    "sample",
    "grid_space",
    "lookup",
    "trial_spec",
    "fixed_seeds",
]

_FORBIDDEN = (
    "tune",
    "split",
    "name",
    "data.source",
    "data.path",
    "data.target",
    "data.features",
    "data.seed",
    "data.text",
    "data.featurize",  # fitted per part from the study's data set (tune model.vocab instead)
    "data.duplicates",
    "evaluate.seal",
)


@dataclass(frozen=True)
class Param:
    """One searched value: categorical choices, or an int / float range."""

    path: str
    kind: str  # "categorical" | "int" | "float"
    choices: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    when: dict[str, tuple] = field(default_factory=dict)

    def encode(self, value: Any) -> Any:
        """Optuna's categorical values are scalars; lists and mappings travel as JSON."""
        return value if _scalar(value) else json.dumps(value, sort_keys=True)

    def decode(self, value: Any) -> Any:
        if self.kind == "categorical" and isinstance(value, str):
            for choice in self.choices:
                if self.encode(choice) == value:
                    return choice
        return value


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def lookup(tree: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a resolved spec tree (None when absent)."""
    node: Any = tree
    for key in path.split("."):
        if (
            isinstance(node, list)
            and key.lstrip("-").isdigit()
            and -len(node) <= int(key) < len(node)
        ):
            node = node[int(key)]
        elif isinstance(node, Mapping) and key in node:
            node = node[key]
        else:
            return None
    return node


def parse_space(tune: TuneSpec, base: Spec) -> list[Param]:
    """Check every entry against the spec (path exists, values accepted) before any trial."""
    resolved = base.model_dump(mode="json")
    params: list[Param] = []
    for path, entry in tune.space.items():
        where = f"tune.space `{path}`"
        if any(path == f or path.startswith(f + ".") for f in _FORBIDDEN):
            raise SpecError(
                f"{where}: cannot be searched (the data, the splits and the sealed test part stay "
                "fixed for a whole study)"
            )
        if path == "seed" and _seed_moves_data(base):
            raise SpecError(
                f"{where}: the split seed (and a synthetic data seed) default to the spec's seed, "
                "so searching it would move the split: a trial's test part would be made of the "
                "study's own train and val rows. Fix them first (split.seed: "
                f"{base.seed}); then `seed` searches the training seed alone "
                "(tunelab tune does this when the study starts)"
            )
        when = {}
        raw_when = entry.when if isinstance(entry, (SpaceRange, SpaceChoice)) else None
        for cond_path, allowed in (raw_when or {}).items():
            if cond_path not in tune.space and lookup(resolved, cond_path) is None:
                raise SpecError(
                    f"{where}: its `when` names `{cond_path}`, which is neither a searched entry "
                    "nor a value of the spec"
                )
            when[cond_path] = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if isinstance(entry, SpaceRange):
            kind = "int" if entry.is_int else "float"
            param = Param(
                path,
                kind,
                low=entry.low,
                high=entry.high,
                log=entry.log,
                step=entry.step,
                when=when,
            )
            probes = [entry.low, entry.high]
        else:
            choices = tuple(entry.choices if isinstance(entry, SpaceChoice) else entry)
            param = Param(path, "categorical", choices=choices, when=when)
            probes = list(choices)
        conditions = {p: v[0] for p, v in when.items()}
        for value in probes:
            try:
                parse_spec(set_values(resolved, {**conditions, path: value}))
            except SpecError as exc:
                detail = str(exc).removeprefix("invalid spec: ")
                raise SpecError(
                    f"{where}: the value {value!r} is rejected by the spec: {detail}"
                ) from None
        params.append(param)
    return params


def sample(trial: optuna.Trial, params: list[Param], base: Mapping[str, Any]) -> dict[str, Any]:
    """Suggest each entry whose condition holds, in order; returns path -> value."""
    values: dict[str, Any] = {}
    for p in params:
        if not all(_current(path, base, values) in allowed for path, allowed in p.when.items()):
            continue
        if p.kind == "categorical":
            picked = trial.suggest_categorical(p.path, [p.encode(c) for c in p.choices])
            values[p.path] = p.decode(picked)
        elif p.kind == "int":
            values[p.path] = trial.suggest_int(
                p.path, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
            )
        else:
            values[p.path] = trial.suggest_float(p.path, p.low, p.high, step=p.step, log=p.log)
    return values


def _current(path: str, base: Mapping[str, Any], values: dict[str, Any]) -> Any:
    return values[path] if path in values else lookup(base, path)


def grid_space(params: list[Param]) -> dict[str, list]:
    """Every entry as a finite list, for the grid sampler (conditional entries cannot be)."""
    grid: dict[str, list] = {}
    for p in params:
        where = f"tune.space `{p.path}`"
        if p.when:
            raise SpecError(f"{where}: the grid sampler cannot search a conditional entry (`when`)")
        if p.kind == "categorical":
            grid[p.path] = [p.encode(c) for c in p.choices]
        elif p.step is None and p.kind == "float":
            raise SpecError(
                f"{where}: grid needs a list of values or a stepped range; got the continuous range "
                f"[{p.low}, {p.high}]. Add `step:` or list the values"
            )
        else:
            step = p.step or 1
            count = int(math.floor((p.high - p.low) / step + 1e-9)) + 1
            values = [p.low + i * step for i in range(count)]
            grid[p.path] = (
                [int(v) for v in values] if p.kind == "int" else [round(v, 12) for v in values]
            )
    return grid


def _seed_moves_data(spec: Spec) -> bool:
    return spec.split.seed is None or getattr(spec.data, "seed", 0) is None


def fixed_seeds(spec: Spec) -> Spec:
    """The spec with the split seed (and a synthetic data seed) written out: the data and the
    splits of a study stay the same whatever seed a trial or a derived spec trains with."""
    if not _seed_moves_data(spec):
        return spec
    fixed = {"split.seed": spec.seed} if spec.split.seed is None else {}
    if getattr(spec.data, "seed", 0) is None:
        fixed["data.seed"] = spec.seed
    return parse_spec(set_values(spec.model_dump(mode="json"), fixed))


def trial_spec(base: Spec | Mapping[str, Any], values: Mapping[str, Any]) -> Spec:
    """The study's spec with a trial's values applied, validated by the same Spec model.

    ``base`` is the study's validated spec, or its tree (``spec.model_dump(mode="json")``,
    which a worker makes once for all its trials). The values are set on a copy of the tree
    and the mapping is validated once: no text is written or read. A value the spec rejects
    raises its :class:`~tunelab.errors.SpecError` (the trial fails with that reason).
    """
    tree = set_values(base.model_dump(mode="json") if isinstance(base, Spec) else base, values)
    tree["tune"] = None
    return parse_spec(tree)
