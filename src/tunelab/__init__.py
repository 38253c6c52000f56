"""tunelab: train, evaluate and tune PyTorch models, honestly.

Example:
    >>> import tunelab
    >>> spec = tunelab.load_spec("examples/linear_gd.yaml")   # doctest: +SKIP
    >>> run = tunelab.train(spec, out="runs/linear")          # doctest: +SKIP
    >>> tunelab.evaluate_run(run, split="test")               # doctest: +SKIP
    >>> tunelab.resume("runs/linear")   # continue a killed run  # doctest: +SKIP
    >>> result = tunelab.tune_study(spec, out="studies/s")    # doctest: +SKIP
    >>> tunelab.load_run("runs/linear").metrics["test"]       # doctest: +SKIP

``tunelab.train``, ``tunelab.evaluate`` and ``tunelab.tune`` are the subpackages
(``from tunelab.evaluate import accuracy``, ``from tunelab.tune import parse_space``).
``tunelab.train(spec)`` trains; the older calls ``tunelab.evaluate(run)`` and
``tunelab.tune(spec)`` still work for one release, with a ``DeprecationWarning``: use
``tunelab.evaluate_run`` and ``tunelab.tune_study``.

Every name is imported when first used, so ``import tunelab`` (and the ``tunelab`` command's
start) loads neither torch nor scipy, matplotlib or optuna.
"""

from __future__ import annotations

from tunelab import _lazy, evaluate, train, tune  # noqa: F401  (the subpackages: made callable below)
from tunelab._version import __version__

_EXPORTS = {
    "load_spec": "spec",
    "dump_spec": "spec",
    "Spec": "spec",
    "resume": "train",
    "evaluate_run": "train",
    "tune_study": "tune",
    "StudyResult": "tune",
    "Run": "runs",
    "load_run": "runs",
    "TunelabError": "errors",
    "SpecError": "errors",
    "DataError": "errors",
    "RunError": "errors",
}

__all__ = ["__version__", "train", *_EXPORTS]

__getattr__, __dir__ = _lazy.lazy_exports(__name__, _EXPORTS)

# The subpackages keep their names; calling one runs its main function.
_lazy.callable_module("tunelab.train", "tunelab.train:train")
_lazy.callable_module(
    "tunelab.evaluate",
    "tunelab:evaluate_run",
    deprecated="tunelab.evaluate(run, ...) is deprecated and will be removed in the next "
    "release; call tunelab.evaluate_run(run, ...) (tunelab.evaluate is the metrics package)",
)
_lazy.callable_module(
    "tunelab.tune",
    "tunelab:tune_study",
    deprecated="tunelab.tune(spec, ...) is deprecated and will be removed in the next "
    "release; call tunelab.tune_study(spec, ...) (tunelab.tune is the tuning package)",
)
