"""Plug-ins: one registry per kind (model, optimizer, schedule, loss, metric, source,
augmentation, sampler, pruner, compression), filled by tunelab's built-ins and by installed packages that
declare an entry point in the group ``tunelab.plugins``. See ``tunelab plugins`` and the
README's "Extending tunelab".

Also importable, as plumbing outside ``__all__``: ``failed_plugins`` (the entry points that
failed to load, as ``tunelab plugins`` shows them).
"""

from tunelab.plugins._load import ENTRY_POINT_GROUP, load_plugins
from tunelab.plugins._load import failed_plugins as failed_plugins  # plumbing, not in __all__
from tunelab.plugins._registry import (
    AUGMENTATIONS,
    COMPRESSIONS,
    KINDS,
    LOSSES,
    METRICS,
    MODELS,
    OPTIMIZERS,
    PRUNERS,
    SAMPLERS,
    SCHEDULES,
    SOURCES,
    Fraction,
    NonNegFloat,
    Options,
    Plugin,
    PositiveFloat,
    Probability,
    Registry,
)

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
    "ENTRY_POINT_GROUP",
    "load_plugins",
    "Fraction",
    "Probability",
    "PositiveFloat",
    "NonNegFloat",
]
