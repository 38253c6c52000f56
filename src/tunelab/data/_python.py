"""The ``python`` source: a torch Dataset made by the user's factory function.

``data: {source: python, factory: "mypkg.data:make_dataset", kwargs: {...}}``. The factory is
imported only because the spec names it, and called with ``kwargs``. It returns a map-style
Dataset of ``(input, target)`` samples, or a ``(train, test)`` pair of them: that test part is
the sealed test (``split.test: source``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.data._dataset import Dataset
from tunelab.data._file_checks import target_of
from tunelab.data._lazy import parse_bytes, scan
from tunelab.errors import DataError

__all__ = ["load_factory", "import_factory"]


def import_factory(path: str) -> Any:
    """The callable ``module:attr`` names (the current folder importable, as for models)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise DataError(
            f"data.factory must be `module:function`, e.g. mypkg.data:make_dataset; got {path!r}"
        )
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attr)
    except Exception as exc:  # an import error, or any error the module raises
        raise DataError(
            f"cannot import data.factory {path!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(factory):
        raise DataError(f"data.factory {path!r} is a {type(factory).__name__}, not a function")
    return factory


def _is_dataset(obj: Any) -> bool:
    return (
        hasattr(obj, "__getitem__")
        and hasattr(obj, "__len__")
        and not isinstance(obj, (str, bytes, dict, np.ndarray))
    )


def load_factory(
    factory: str,
    kwargs: dict[str, Any],
    *,
    task: str = "auto",
    cache: str = "auto",
    memory_limit: str | int = "2GB",
    workers: int = 0,
) -> Dataset:
    """Call the factory and read its samples once (shapes checked, hashed, targets kept).

    ``cache``: ``memory`` holds the inputs as one array (the fast path), ``none`` reads them
    through a DataLoader every epoch, ``auto`` holds them when they fit in ``memory_limit``.
    """
    call = import_factory(factory)
    try:
        made = call(**kwargs)
    except Exception as exc:  # the user's code: its error, named, as one line
        raise DataError(
            f"data.factory {factory!r} raised {type(exc).__name__}: {exc} "
            f"(called with kwargs {kwargs})"
        ) from None
    where = f"the Dataset of data.factory {factory!r}"
    pair = isinstance(made, tuple) and len(made) == 2 and all(map(_is_dataset, made))
    parts = list(made) if pair else [made]
    for part in parts:
        if not _is_dataset(part) or isinstance(part, tuple):
            raise DataError(
                f"data.factory {factory!r} returned a {type(made).__name__}, not a torch Dataset "
                "(an object with __getitem__ and __len__) or a (train, test) pair of them"
            )
    samples = parts[0] if not pair else _Joined(parts[0], parts[1])
    n_bytes = _bytes_of(samples)
    keep = cache == "memory" or (cache == "auto" and n_bytes <= parse_bytes(memory_limit))
    lazy, targets, X = scan(samples, where=where, workers=workers, keep=keep)
    y, task, classes = target_of(np.asarray(targets), task, where=f"the targets of {where}")
    name = factory.partition(":")[2]
    test = np.arange(len(parts[0]), len(samples)) if pair else None
    return Dataset(
        X=X,
        y=y,
        task=task,
        name=name,
        classes=classes,
        source_test=test,
        test_is_sealed=pair,
        lazy=None if keep else lazy,
    )


def _bytes_of(samples: Any) -> int:
    """The float32 size of all inputs, from the first sample's shape."""
    first = samples[0]
    x = first[0] if isinstance(first, (tuple, list)) and first else first
    try:
        return len(samples) * int(np.asarray(x, dtype=np.float32).nbytes)
    except (TypeError, ValueError):
        return 0  # not numeric: the scan names the sample


class _Joined:
    """The train part's samples, then the test part's (indices continue)."""

    def __init__(self, train: Any, test: Any) -> None:
        self.train, self.test, self.n = train, test, len(train)

    def __len__(self) -> int:
        return self.n + len(self.test)

    def __getitem__(self, i: int) -> Any:
        return self.train[i] if i < self.n else self.test[i - self.n]
