"""The spec tree: one validated tree that says what data, which splits, which model, how to train.

The kinds that plug-ins provide (data source, model, loss, optimizer, schedule, augmentation)
are discriminated unions built here from the registries, after tunelab's built-ins and the
installed entry points have registered, so a name is written once, in its plug-in's module.
Samplers and pruners are Optuna's classes: their names are checked against their registries.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from tunelab.plugins import (
    AUGMENTATIONS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
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
from tunelab.spec._tune import (  # noqa: E402
    PrunerSpec,
    SamplerSpec,
    SpaceChoice,
    SpaceRange,
    TuneSpec,
    expand_shorthand,
)
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


# ----------------------------------------------------------------------------------------------
# splits


class CVSpec(_Node):
    """Cross-validation over the non-test part. ``auto`` is stratified for classification."""

    kind: Literal["auto", "kfold", "stratified", "group", "loo", "repeated"] = "auto"
    """auto (stratified for classification, else kfold), kfold, stratified, group, loo or repeated"""
    folds: int = Field(5, ge=2)
    """number of folds"""
    repeats: int = Field(3, ge=1, description="repeated: how many times k-fold is repeated")
    shuffle: bool = True
    """shuffle before cutting the folds"""


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
    """cross-validation instead of a holdout: folds (5), `loo`, or {kind, folds, repeats}"""
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
    """the logged value to watch, e.g. val_loss or val_accuracy"""
    mode: Literal["auto", "min", "max"] = "auto"
    """auto: max for accuracy-like values, min for losses"""
    patience: int = Field(5, ge=1)
    """epochs without improvement before stopping"""
    min_delta: NonNegFloat = 0.0
    """smallest change that counts as improvement"""
    restore_best: bool = True
    """end with the weights of the best epoch"""


class TrainSpec(_Node):
    epochs: int = Field(10, ge=1)
    """passes over the training part"""
    batch_size: int = Field(64, ge=1, description="ignored by gd and lbfgs (full batch)")
    loss: LossSpec | None = Field(None, description="default: cross_entropy or mse by task")
    optimizer: OptimizerSpec = Field(default_factory=Adam)
    """an optimizer plug-in, by name or {name, options}"""
    schedule: ScheduleSpec = Field(default_factory=ConstantSchedule)
    """learning-rate schedule, by name or {name, options}"""
    l1: NonNegFloat = Field(0.0, description="L1 penalty on weights (not biases)")
    grad_clip: PositiveFloat | None = Field(None, description="max global gradient norm")
    augment: list[AugmentStep] = Field(default_factory=list)
    """augmentation steps applied to training batches, in order"""
    early_stopping: EarlyStoppingSpec | None = None
    """stop when a monitored value stops improving"""
    metrics: list[str] | None = Field(
        None, description="metrics logged per epoch; default accuracy or rmse by task"
    )
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """auto (bf16 autocast on a GPU that has it), fp32 or bf16"""
    eval_batch_size: int = Field(
        128,
        ge=1,
        description="batch of the evaluation passes (128: a CNN's activations stay in cache)",
    )
    bucket: int = Field(0, ge=0)
    """token sequences: each epoch's shuffled order is cut into pools of this many batches,
    each pool sorted by length before it is cut into batches, and the batches shuffled (less
    padding per batch: length bucketing); 0: off"""

    @field_validator("loss", "optimizer", "schedule", mode="before")
    @classmethod
    def _name_shorthand(cls, value: Any) -> Any:
        return expand_shorthand("name")(value)

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [expand_shorthand("name")(v) for v in value]
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
    """confidence level of the intervals"""
    resamples: int = Field(2000, ge=0, description="0 switches intervals off")
    method: Literal["percentile", "bca"] = "percentile"
    """percentile or bca (bias-corrected and accelerated)"""
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
    """bootstrap confidence intervals"""
    temperature: bool = Field(
        False,
        description="classification: fit temperature scaling on the validation part "
        "and report the calibrated test part too",
    )


class Spec(_Node):
    """The whole tree. ``data`` and ``model`` are required; everything else has defaults."""

    name: str = Field("run", pattern=r"^[\w.\-]+$")
    """the run's or study's name: the default folder runs/<name> or studies/<name>"""
    seed: int = Field(0, ge=0)
    """seed of splits, initialisation and shuffling"""
    data: DataSpec
    """where the samples come from (a source plug-in)"""
    split: SplitSpec = Field(default_factory=SplitSpec)
    """test part first (sealed), then holdout or cross-validation"""
    model: ModelSpec
    """the network (a model plug-in, or your own class)"""
    train: TrainSpec = Field(default_factory=TrainSpec)
    """epochs, batches, loss, optimizer, schedule, augmentation"""
    evaluate: EvaluateSpec = Field(default_factory=EvaluateSpec)
    """metrics, intervals and the test part"""
    tune: TuneSpec | None = None
    """the hyperparameter search of tunelab tune"""

    @field_validator("model", "data", mode="before")
    @classmethod
    def _shorthand(cls, value: Any, info) -> Any:
        return expand_shorthand("name" if info.field_name == "model" else "source")(value)

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
