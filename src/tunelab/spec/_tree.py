"""The spec tree: one validated tree that says what data, which splits, which model, how to train.

The kinds that plug-ins provide (data source, model, loss, optimizer, schedule, augmentation)
are discriminated unions built here from the registries, after tunelab's built-ins and the
installed entry points have registered, so a name is written once, in its plug-in's module.
Samplers and pruners are Optuna's classes: their names are checked against their registries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from tunelab.plugins import (
    AUGMENTATIONS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    PRUNERS,
    SAMPLERS,
    SCHEDULES,
    SOURCES,
    Fraction,
    NonNegFloat,
    PositiveFloat,
    load_plugins,
)
from tunelab.plugins import Options as _Node

load_plugins()  # built-ins in their declared order, then entry points: before the unions

from tunelab.data._sources import BUILTIN_SOURCES  # noqa: E402
from tunelab.errors import did_you_mean  # noqa: E402
from tunelab.models._user import route_model  # noqa: E402
from tunelab.train._optimizers import Adam  # noqa: E402
from tunelab.train._schedules import ConstantSchedule  # noqa: E402

__all__ = [
    "Spec",
    "DataSpec",
    "SplitSpec",
    "CVSpec",
    "ModelSpec",
    "TrainSpec",
    "EvaluateSpec",
    "CISpec",
    "SealRef",
    "TuneSpec",
    "SpaceRange",
    "SpaceChoice",
    "SamplerSpec",
    "PrunerSpec",
    "OptimizerSpec",
    "ScheduleSpec",
    "LossSpec",
    "AugmentStep",
    "EarlyStoppingSpec",
    "BUILTIN_SOURCES",
    "UNIONS",
]

DataSpec = SOURCES.union()
ModelSpec = MODELS.union(route=route_model)
LossSpec = LOSSES.union()
OptimizerSpec = OPTIMIZERS.union(default="adam")
ScheduleSpec = SCHEDULES.union(default="constant")
AugmentStep = AUGMENTATIONS.union()

# spec key -> (union, registry): for error messages and override handling
UNIONS = {
    "data": (DataSpec, SOURCES),
    "model": (ModelSpec, MODELS),
    "loss": (LossSpec, LOSSES),
    "optimizer": (OptimizerSpec, OPTIMIZERS),
    "schedule": (ScheduleSpec, SCHEDULES),
    "augment": (AugmentStep, AUGMENTATIONS),
}


def _expand_shorthand(field: str):
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


# ----------------------------------------------------------------------------------------------
# splits


class CVSpec(_Node):
    """Cross-validation over the non-test part. ``auto`` is stratified for classification."""

    kind: Literal["auto", "kfold", "stratified", "group", "loo", "repeated"] = "auto"
    folds: int = Field(5, ge=2)
    repeats: int = Field(3, ge=1, description="repeated: how many times k-fold is repeated")
    shuffle: bool = True


class SplitSpec(_Node):
    """Test part first (sealed), then a holdout validation part or cross-validation folds."""

    test: Fraction | Literal["source"] = Field(
        0.2,
        description="fraction carved out first as the test part, or `source` for the "
        "data set's own test part (e.g. MNIST's 10,000)",
    )
    val: Fraction = Field(0.2, description="fraction of the non-test part (holdout only)")
    stratify: bool | None = Field(None, description="default: yes for classification")
    cv: CVSpec | None = None
    seed: int | None = Field(None, description="split seed; defaults to the spec's seed")
    on_duplicates: Literal["warn", "error", "drop"] = Field(
        "warn",
        description="exact duplicate samples across parts (a copy of a training sample in a "
        "validation or test part): `warn` records and prints them, `error` stops, `drop` "
        "removes those copies from the validation and test parts",
    )

    @field_validator("cv", mode="before")
    @classmethod
    def _cv_shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a fold count, `loo`, or a mapping {kind, folds}")
        if isinstance(value, int):
            return {"folds": value}
        if value == "loo":
            return {"kind": "loo"}
        return value

    @model_validator(mode="after")
    def _holdout_needs_val(self) -> SplitSpec:
        if self.cv is None and self.val == 0:
            raise ValueError("holdout needs a validation part: set split.val > 0 or use split.cv")
        return self


# ----------------------------------------------------------------------------------------------
# training: losses, optimizers, schedules, augmentation, early stopping


class EarlyStoppingSpec(_Node):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs."""

    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int = Field(5, ge=1)
    min_delta: NonNegFloat = 0.0
    restore_best: bool = True


class TrainSpec(_Node):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1, description="ignored by gd and lbfgs (full batch)")
    loss: LossSpec | None = Field(None, description="default: cross_entropy or mse by task")
    optimizer: OptimizerSpec = Field(default_factory=Adam)
    schedule: ScheduleSpec = Field(default_factory=ConstantSchedule)
    l1: NonNegFloat = Field(0.0, description="L1 penalty on weights (not biases)")
    grad_clip: PositiveFloat | None = Field(None, description="max global gradient norm")
    augment: list[AugmentStep] = Field(default_factory=list)
    early_stopping: EarlyStoppingSpec | None = None
    metrics: list[str] | None = Field(
        None, description="metrics logged per epoch; default accuracy or rmse by task"
    )
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    eval_batch_size: int = Field(1000, ge=1)

    @field_validator("loss", "optimizer", "schedule", mode="before")
    @classmethod
    def _name_shorthand(cls, value: Any) -> Any:
        return _expand_shorthand("name")(value)

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_expand_shorthand("name")(v) for v in value]
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", value):
            hint = did_you_mean(value, ("auto", "cpu", "cuda", "mps"))
            raise ValueError(f"expected auto, cpu, cuda or cuda:N; got {value!r}{hint}")
        return value


class CISpec(_Node):
    """Bootstrap confidence intervals for every metric of every evaluated part."""

    level: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.95
    resamples: int = Field(2000, ge=0, description="0 switches intervals off")
    method: Literal["percentile", "bca"] = "percentile"
    stratified: bool = Field(False, description="resample within each class")


class SealRef(_Node):
    """The study whose ``seal.json`` covers this spec's test part (written by ``tunelab tune``)."""

    study: str = Field(description="absolute path of the study folder")
    fingerprint: str = Field(description="the sealed test part's content fingerprint")


class EvaluateSpec(_Node):
    metrics: list[str] | None = Field(None, description="default: every metric of the task")
    test: bool = Field(True, description="evaluate the sealed test part once at the end of train")
    seal: SealRef | None = Field(
        None,
        description="set by tunelab tune in every spec it writes: each evaluation of the test "
        "part is logged in that study's seal.json",
    )
    ci: CISpec = Field(default_factory=CISpec)
    temperature: bool = Field(
        False,
        description="classification: fit temperature scaling on the validation part "
        "and report the calibrated test part too",
    )


class SpaceRange(_Node):
    """A numeric range; integers when low, high (and step) are all written as integers."""

    low: int | float
    high: int | float
    log: bool = False
    step: Annotated[int | float, Field(gt=0)] | None = None
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
    when: dict[str, Any] | None = None


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

    name: str = Field("tpe", description="grid, random, tpe, cmaes, qmc, gp, or a plug-in's name")
    seed: int | None = Field(None, description="defaults to the spec's seed")
    n_startup_trials: int = Field(
        8, ge=0, description="random trials before tpe/gp model the space"
    )
    multivariate: bool = Field(True, description="tpe: model parameters jointly")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered(SAMPLERS, value)


class PrunerSpec(_Node):
    """When to stop bad trials early. ``none`` runs every trial to the end.

    median / percentile: stop a trial whose value at a step is worse than the median (or the
    given percentile) of earlier trials at that step. asha / hyperband: successive halving over
    steps. wilcoxon: for cross-validation, a paired test of the trial's finished folds against
    the best trial's same folds.
    """

    name: str = Field(
        "median", description="none, median, percentile, asha, hyperband, wilcoxon, or a plug-in's"
    )
    n_startup_trials: int = Field(4, ge=0, description="median/percentile: trials before pruning")
    n_warmup_steps: int = Field(1, ge=0, description="median/percentile: steps before pruning")
    percentile: Annotated[float, Field(gt=0.0, lt=100.0)] = 25.0
    min_resource: int = Field(1, ge=1, description="asha/hyperband: steps before the first rung")
    reduction_factor: int = Field(3, ge=2)
    p_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    n_startup_steps: int = Field(2, ge=0, description="wilcoxon: folds before testing")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        return _registered(PRUNERS, value)


class TuneSpec(_Node):
    """What to search, how, and for how long (``tunelab tune``)."""

    trials: int | None = Field(20, ge=1, description="total trials, failed and pruned included")
    timeout: PositiveFloat | None = Field(None, description="seconds for the search")
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    objective: str | None = Field(
        None, description="val.<metric> or val.loss; default val.accuracy or val.rmse by task"
    )
    direction: Literal["auto", "maximize", "minimize"] = "auto"
    space: dict[str, list[Any] | SpaceRange | SpaceChoice] = Field(min_length=1)
    refit: bool = Field(True, description="refit the best on all non-test data, test it once")
    refit_seeds: int = Field(
        1,
        ge=1,
        description="refit the best with this many seeds: mean ± std and a t-interval of "
        "the test metrics (each refit is one logged look at the test part)",
    )
    top: int = Field(10, ge=1, description="rows of the final table")

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _name_shorthand(cls, value: Any) -> Any:
        return _expand_shorthand("name")(value)

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
        return self


class Spec(_Node):
    """The whole tree. ``data`` and ``model`` are required; everything else has defaults."""

    name: str = Field("run", pattern=r"^[\w.\-]+$")
    seed: int = Field(0, ge=0)
    data: DataSpec
    split: SplitSpec = Field(default_factory=SplitSpec)
    model: ModelSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    tune: TuneSpec | None = None

    @field_validator("model", "data", mode="before")
    @classmethod
    def _shorthand(cls, value: Any, info) -> Any:
        return _expand_shorthand("name" if info.field_name == "model" else "source")(value)

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        source = SOURCES.get(self.data.source)
        if self.split.test == "source" and not source.extra.get("own_test"):
            raise ValueError(
                f"split.test: `source` needs a data set with its own test part (mnist); "
                f"data.source is {self.data.source!r}. Use a fraction such as 0.2"
            )
        cv = self.split.cv
        has_groups = source.extra.get("groups", lambda _: False)(self.data)
        if cv is not None and cv.kind == "group" and not has_groups:
            raise ValueError(
                "split.cv.kind: group needs a group label per sample: set data.groups to a "
                "column of a csv/parquet source, or store an array `groups` in an npz file"
            )
        return self
