"""The ``tune`` section of the spec: the search space's entries, Optuna's sampler and pruner by
name, the budget. Errors in ``tune.space`` are one line per entry (never pydantic's union of
three attempts)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from tunelab.errors import did_you_mean
from tunelab.plugins import PRUNERS, SAMPLERS, PositiveFloat
from tunelab.plugins import Options as _Node

__all__ = [
    "TuneSpec",
    "SpaceRange",
    "SpaceChoice",
    "SamplerSpec",
    "PrunerSpec",
    "StopDominatedSpec",
    "MeasureSpec",
    "COSTS",
    "parse_pick",
]

# what a multi-objective study can measure of each trial's model besides its val metrics
# (all three are minimised): CPU latency at batch 1, weights on disk, non-zero parameters
COSTS = ("latency_ms", "size_mb", "params")
_PICK_OPS = ("<=", ">=", "<", ">")


def expand_shorthand(field: str):
    def expand(value: Any) -> Any:
        return {field: value} if isinstance(value, str) else value

    return expand


def _registered(registry, value: str) -> str:
    """A name checked against its registry, worded like any fixed-choice field's error."""
    if value not in registry:
        valid = [repr(n) for n in registry.names()]
        expected = ", ".join(valid[:-1]) + (" or " if len(valid) > 1 else "") + valid[-1]
        hint = did_you_mean(value, registry.names())
        raise ValueError(f"expected {expected}; got {value!r}{hint}")
    return value


class SpaceRange(_Node):
    """A numeric range; integers when low, high (and step) are all written as integers."""

    low: int | float
    """lowest value"""
    high: int | float
    """highest value"""
    log: bool = False
    """sample on a log scale"""
    step: Annotated[int | float, Field(gt=0)] | None = None
    """sample on a grid of this step"""
    when: dict[str, Any] | None = Field(
        None,
        description="sample only when these paths have these values, e.g. "
        "{train.optimizer.name: sgd} (a list means any of them)",
    )

    @model_validator(mode="after")
    def _range(self) -> SpaceRange:
        if not self.low < self.high:
            raise ValueError(f"low must be below high; got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0; got low={self.low}")
        if self.log and self.step is not None:
            raise ValueError("a range is either log or stepped, not both")
        return self

    @property
    def is_int(self) -> bool:
        values = [self.low, self.high] + ([self.step] if self.step is not None else [])
        return all(isinstance(v, int) and not isinstance(v, bool) for v in values)


class SpaceChoice(_Node):
    """Categorical values, optionally conditional (``when``)."""

    choices: list[Any] = Field(min_length=1)
    """the values to choose from"""
    when: dict[str, Any] | None = None
    """sample only when these paths have these values"""


_SPACE_FORMS = (
    "a list of choices [a, b], {choices: [a, b], when: {...}}, or a range "
    "{low: L, high: H, log: true|false, step: S, when: {...}}"
)


def _space_entry(path: str, entry: Any) -> Any:
    """One ``tune.space`` entry validated into its form; errors are one line each."""
    if isinstance(entry, list):
        if not entry:
            raise ValueError(f"space entry {path!r} is an empty list of choices")
        return entry
    if not isinstance(entry, Mapping):
        raise ValueError(f"space entry {path!r}: expected {_SPACE_FORMS}; got {entry!r}")
    form = SpaceChoice if "choices" in entry else SpaceRange
    if form is SpaceRange and not ({"low", "high"} & set(entry)):
        unknown = [k for k in entry if k not in SpaceRange.model_fields]
        guess = next((did_you_mean(str(k), ["low", "high", "choices"]) for k in unknown), "")
        raise ValueError(
            f"space entry {path!r}: expected {_SPACE_FORMS}; got {dict(entry)!r}{guess}"
        )
    try:
        return form.model_validate(entry)
    except ValidationError as exc:
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]  # an unknown key first: `hi:` is why `high` is missing
        where = ".".join(str(k) for k in err["loc"] if k in form.model_fields or k == err["loc"][0])
        if err["type"] == "extra_forbidden":
            valid = list(form.model_fields)
            why = (
                f"unknown key `{where}`{did_you_mean(where, valid)}; valid keys: {', '.join(valid)}"
            )
        elif err["type"] == "missing":
            why = f"missing key `{where}`"
        elif err["type"].startswith(("int_", "float_")):
            why = f"`{where}`: expected a number; got {err.get('input')!r}"
        else:
            message = err["msg"].removeprefix("Value error, ")
            why = (f"`{where}`: " if where else "") + message[0].lower() + message[1:]
            if "got" not in message:
                why += f"; got {err.get('input')!r}"
        raise ValueError(f"space entry {path!r}: {why}") from None


class SamplerSpec(_Node):
    """How trials choose their parameters: one of Optuna's samplers, by name."""

    name: str = Field(
        "tpe", description="grid, random, tpe, nsga2, cmaes, qmc, gp, or a plug-in's name"
    )
    seed: int | None = Field(None, description="defaults to the spec's seed")
    n_startup_trials: int = Field(
        8, ge=0, description="random trials before tpe/gp model the space"
    )
    multivariate: bool = Field(True, description="tpe: model parameters jointly")
    population_size: int = Field(10, ge=2, description="nsga2: trials per generation")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered(SAMPLERS, value)


class PrunerSpec(_Node):
    """When to stop bad trials early. ``none`` runs every trial to the end.

    median / percentile: stop a trial whose value at a step is worse than the median (or the
    given percentile) of earlier trials at that step. asha / hyperband: successive halving over
    steps. wilcoxon: for cross-validation, a paired test of the trial's finished folds against
    the best trial's same folds. noise: stop a trial only when the exact interval of its val
    metric (a share of the samples, e.g. accuracy) lies below the best completed trial's value
    at the same step.
    """

    name: str = Field(
        "median",
        description="none, median, percentile, asha, hyperband, wilcoxon, noise, or a plug-in's",
    )
    n_startup_trials: int = Field(4, ge=0, description="median/percentile: trials before pruning")
    n_warmup_steps: int = Field(1, ge=0, description="median/percentile: steps before pruning")
    percentile: Annotated[float, Field(gt=0.0, lt=100.0)] = 25.0
    """percentile: the percentile to beat"""
    min_resource: int = Field(1, ge=1, description="asha/hyperband: steps before the first rung")
    reduction_factor: int = Field(3, ge=2)
    """asha/hyperband: how many trials each rung keeps (1 in this many)"""
    p_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    """wilcoxon: p-value below which a trial is stopped"""
    n_startup_steps: int = Field(2, ge=0, description="wilcoxon: folds before testing")
    level: Annotated[float, Field(gt=0.5, lt=1.0)] = Field(
        0.95, description="noise: the level of the val metric's interval"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered(PRUNERS, value)


class StopDominatedSpec(_Node):
    """Early stopping of a multi-objective study (Optuna's pruners are single-objective).

    After each epoch a trial's objectives (its val metrics at that epoch and its measured
    costs) are compared with every completed trial's at the same step: the trial stops when one
    of them is at least ``margin`` better on every val objective and no worse on every cost.
    ``null`` runs every trial to the end.
    """

    margin: float = Field(
        0.02, ge=0.0, description="how much better (in the val metric's units) a trial must be"
    )
    n_startup_trials: int = Field(2, ge=1, description="completed trials before any stop")
    n_warmup_steps: int = Field(1, ge=0, description="steps (epochs) that never stop")


class MeasureSpec(_Node):
    """How a multi-objective study measures latency_ms (CPU, batch 1, median of repeats)."""

    threads: int = Field(1, ge=1, description="CPU threads fixed while measuring")
    repeats: int = Field(30, ge=1, description="timed forward passes (after 3 warm-up ones)")


def parse_pick(text: str, objectives: list[str]) -> tuple[str, str | None, float | None]:
    """``latency_ms<=2`` -> ("latency_ms", "<=", 2.0); ``val.accuracy`` -> (name, None, None)."""
    for op in _PICK_OPS:
        name, found, bound = text.partition(op)
        if found:
            name = name.strip()
            try:
                number = float(bound)
            except ValueError:
                raise ValueError(
                    f"tune.pick {text!r}: expected <objective>{op}<number>; got {bound.strip()!r}"
                ) from None
            break
    else:
        name, op, number = text.strip(), None, None
    if name not in objectives:
        raise ValueError(
            f"tune.pick {text!r}: {name!r} is not one of tune.objectives "
            f"({', '.join(objectives)}){did_you_mean(name, objectives)}"
        )
    return name, op, number


class TuneSpec(_Node):
    """What to search, how, and for how long (``tunelab tune``)."""

    trials: int | None = Field(20, ge=1, description="total trials, failed and pruned included")
    timeout: PositiveFloat | None = Field(None, description="seconds for the search")
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    """how trials choose parameters (an Optuna sampler by name)"""
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    """when to stop bad trials early"""
    objective: str | None = Field(
        None, description="val.<metric> or val.loss; default val.accuracy or val.rmse by task"
    )
    direction: Literal["auto", "maximize", "minimize"] = "auto"
    """auto: from the objective's metric"""
    objectives: list[str] | None = Field(
        None,
        min_length=2,
        description="multi-objective: val.<metric>, latency_ms, size_mb or params; the result "
        "is the Pareto front",
    )
    pick: list[str] | None = Field(
        None,
        description="multi-objective: which front trial is refit and tested, e.g. "
        "[latency_ms<=2, val.accuracy]; default: the best on the first objective",
    )
    stop_dominated: StopDominatedSpec | None = Field(default_factory=StopDominatedSpec)
    """multi-objective: stop a trial once a completed trial dominates it at the same epoch
    (null: never)"""
    measure: MeasureSpec = Field(default_factory=MeasureSpec)
    """multi-objective: how latency_ms is measured per trial"""
    space: dict[str, list[Any] | SpaceRange | SpaceChoice] = Field(min_length=1)
    """dotted spec path -> choices [a, b], a range {low, high, log, step} or {choices, when}"""
    refit: bool = Field(True, description="refit the best on all non-test data, test it once")
    refit_seeds: int = Field(
        1,
        ge=1,
        description="refit the best with this many seeds: mean ± std and a t-interval of "
        "the test metrics (each refit is one logged look at the test part)",
    )
    top: int = Field(10, ge=1, description="rows of the final table")
    pack: Literal["auto", "off"] | Annotated[int, Field(ge=1)] = Field(
        "off",
        description="trials trained together as stacked models: off, N, or auto (measured "
        "once per study: packs 8 where that is at least 1.5x faster, e.g. an MLP on a CPU)",
    )
    trial_nproc: int = Field(
        1,
        ge=1,
        description="processes that train each trial data-parallel (DDP: gloo on CPU, nccl on "
        "CUDA), as tunelab train --nproc does; workers x trial_nproc processes in all",
    )

    @field_validator("pick", mode="before")
    @classmethod
    def _one_pick(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("objectives")
    @classmethod
    def _objective_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = []
        for text in value:
            text = text.strip()
            side, dot, metric = text.partition(".")
            if not dot:
                side, _, metric = text.partition("_")
            if text in COSTS or (side == "val" and metric):
                names.append(text if text in COSTS else f"val.{metric}")
                continue
            if side == "test":
                raise ValueError(f"{text!r}: the test part is sealed; tune on val.<metric>")
            known = [*COSTS, "val.accuracy", "val.loss", "val.rmse", "val.f1_macro"]
            raise ValueError(
                f"unknown objective {text!r}{did_you_mean(text, known)}; expected val.<metric>, "
                f"{', '.join(COSTS)}"
            )
        if len(set(names)) < len(names):
            raise ValueError(f"an objective is named twice: {', '.join(names)}")
        if not any(n.startswith("val.") for n in names):
            raise ValueError(
                f"at least one objective must be a val metric (val.accuracy, ...); got {names}"
            )
        return names

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _name_shorthand(cls, value: Any) -> Any:
        return expand_shorthand("name")(value)

    @field_validator("pack", mode="before")
    @classmethod
    def _pack(cls, value: Any) -> Any:
        if value in ("auto", "off") or (type(value) is int and value >= 1):
            return value
        raise ValueError(f"expected auto, off or a number of trials (1 or more); got {value!r}")

    @field_validator("space", mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        """Each entry becomes a list, a SpaceRange or a SpaceChoice here, with a one-line error
        naming the entry (never pydantic's union of three attempts)."""
        if not isinstance(value, Mapping):
            return value
        return {str(path): _space_entry(str(path), entry) for path, entry in value.items()}

    @model_validator(mode="after")
    def _budget(self) -> TuneSpec:
        if self.trials is None and self.timeout is None:
            raise ValueError("set tune.trials, tune.timeout or both")
        if self.trial_nproc > 1 and self.pack not in ("off", 1):
            raise ValueError(
                f"tune.trial_nproc: {self.trial_nproc} trains each trial on several processes; "
                f"tune.pack: {self.pack} trains several trials in one: set tune.pack: off or "
                "tune.trial_nproc: 1"
            )
        if self.trial_nproc > 1 and self.objectives is not None:
            raise ValueError(
                f"tune.trial_nproc: {self.trial_nproc} cannot train a multi-objective study's "
                "trials (tune.objectives measures each trial's costs in one process): set "
                "tune.trial_nproc: 1"
            )
        if self.objectives is None:
            if self.pick is not None:
                raise ValueError("tune.pick needs tune.objectives (a multi-objective study)")
            return self
        if self.objective is not None:
            raise ValueError("set tune.objective (one) or tune.objectives (several), not both")
        if self.direction != "auto":
            raise ValueError(
                "tune.direction applies to one objective; each of tune.objectives has its own "
                "(val metrics by their greater_is_better, latency_ms, size_mb, params minimised)"
            )
        if "pruner" in self.model_fields_set and self.pruner.name != "none":
            raise ValueError(
                f"tune.pruner {self.pruner.name}: Optuna's pruners are single-objective; a "
                "multi-objective study stops a trial once a completed trial dominates it at the "
                "same epoch by tune.stop_dominated.margin (set that, or drop tune.pruner)"
            )
        if self.pack not in ("off", 1):
            raise ValueError(
                "tune.pack trains single-objective trials together; a multi-objective study "
                "(tune.objectives) measures each trial's costs alone: set tune.pack: off"
            )
        self.pruner = PrunerSpec(name="none")
        for text in self.pick or []:
            parse_pick(text, self.objectives)
        if sum(parse_pick(t, self.objectives)[1] is None for t in self.pick or []) > 1:
            raise ValueError(
                f"tune.pick {self.pick}: at most one objective to rank by, the rest constraints"
            )
        return self
