"""tunelab: train, evaluate and tune PyTorch models, honestly.

Example:
    >>> import tunelab
    >>> spec = tunelab.load_spec("examples/linear_gd.yaml")   # doctest: +SKIP
    >>> run = tunelab.train(spec, out="runs/linear")          # doctest: +SKIP
    >>> tunelab.evaluate(run, split="test")                   # doctest: +SKIP
    >>> tunelab.resume("runs/linear")   # continue a killed run  # doctest: +SKIP

Note: ``tunelab.evaluate`` and ``tunelab.tune`` are the functions; the subpackages of the same
names are imported with ``from tunelab.evaluate import accuracy`` or
``from tunelab.tune import parse_space``.
"""

from __future__ import annotations

# Import the subpackages first so that binding the name `evaluate` to the function below
# does not hide the `tunelab.evaluate` metrics package from `from tunelab.evaluate import ...`.
import tunelab.evaluate  # noqa: E402,F401  (registers the subpackage in sys.modules)
import tunelab.tune  # noqa: E402,F401
from tunelab._version import __version__
from tunelab.errors import DataError, RunError, SpecError, TunelabError
from tunelab.runs import Run
from tunelab.spec import Spec, dump_spec, load_spec
from tunelab.train import evaluate, resume, train
from tunelab.tune import StudyResult, tune

__all__ = [
    "__version__",
    "load_spec",
    "dump_spec",
    "Spec",
    "train",
    "resume",
    "evaluate",
    "Run",
    "tune",
    "StudyResult",
    "TunelabError",
    "SpecError",
    "DataError",
    "RunError",
]
