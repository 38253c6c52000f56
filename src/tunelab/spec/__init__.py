"""The spec: one validated tree that says what data, which splits, which model, how to train.

Everything is validated here, once, before any data is loaded. YAML (or a plain dict) goes in,
a :class:`Spec` comes out; ``--set dotted.path=value`` overrides are applied to the raw tree
first and parsed as YAML scalars. Errors name the full path, what is allowed and what was given.

The modules: ``_tree`` (the nodes, with the plug-in unions built from the registries),
``_load`` (files, mappings), ``_schema`` (the JSON Schema for editors), ``_starter`` (``tunelab init``'s proposal), ``_yaml`` (safe reading, limits), ``_overrides`` and ``_errors``
(pydantic's errors as one line each).

Example:
    >>> spec = load_spec({"data": {"source": "iris"}, "model": {"name": "mlp"}},
    ...                  overrides=["train.epochs=3"])
    >>> spec.train.epochs
    3
"""

# the tree first: it loads the plug-ins, in their declared order, before building its unions
from tunelab.data._augment import AffineStep, CropStep, EraseStep, FlipStep, NoiseStep
from tunelab.data._sources import (
    BuiltinData,
    ImageFolderData,
    LinearData,
    MnistData,
    NpzData,
    TableData,
)
from tunelab.models._cnn import CNNModel
from tunelab.models._linear import LinearModel
from tunelab.models._mlp import MLPModel
from tunelab.models._user import CustomModel, UserModel
from tunelab.spec._load import applied, dump_spec, load_spec, parse_spec
from tunelab.spec._overrides import apply_overrides, set_values
from tunelab.spec._schema import spec_schema, write_schema
from tunelab.spec._starter import Starter, starter_spec
from tunelab.spec._tree import (
    BUILTIN_SOURCES,
    AugmentStep,
    CISpec,
    CVSpec,
    DataSpec,
    EarlyStoppingSpec,
    EvaluateSpec,
    LossSpec,
    ModelSpec,
    OptimizerSpec,
    PrunerSpec,
    SamplerSpec,
    ScheduleSpec,
    SealRef,
    SpaceChoice,
    SpaceRange,
    Spec,
    SplitSpec,
    TrainSpec,
    TuneSpec,
)
from tunelab.spec._tune import COSTS, MeasureSpec, StopDominatedSpec, parse_pick
from tunelab.train._losses import BCELoss, CrossEntropyLoss, HuberLoss, MAELoss, MSELoss
from tunelab.train._optimizers import (
    FULL_BATCH_OPTIMIZERS,
    GD,
    LBFGS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    RMSprop,
)
from tunelab.train._schedules import (
    ConstantSchedule,
    CosineSchedule,
    ExponentialSchedule,
    LinearSchedule,
    OneCycleSchedule,
    PlateauSchedule,
    StepSchedule,
)

# the options classes of the built-in plug-ins, re-exported from their modules for code written
# against the single-module spec (new code imports them from the plug-in's module)


__all__ = [
    "BuiltinData",
    "ImageFolderData",
    "LinearData",
    "MnistData",
    "NpzData",
    "TableData",
    "AffineStep",
    "CropStep",
    "EraseStep",
    "FlipStep",
    "NoiseStep",
    "CNNModel",
    "LinearModel",
    "MLPModel",
    "CustomModel",
    "UserModel",
    "BCELoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "MAELoss",
    "MSELoss",
    "FULL_BATCH_OPTIMIZERS",
    "GD",
    "LBFGS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "RMSprop",
    "ConstantSchedule",
    "CosineSchedule",
    "ExponentialSchedule",
    "LinearSchedule",
    "OneCycleSchedule",
    "PlateauSchedule",
    "StepSchedule",
    "PrunerSpec",
    "SamplerSpec",
    "SpaceChoice",
    "SpaceRange",
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
    "StopDominatedSpec",
    "MeasureSpec",
    "COSTS",
    "parse_pick",
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
    "applied",
    "spec_schema",
    "write_schema",
    "starter_spec",
    "Starter",
]
