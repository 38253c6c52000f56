"""`tunelab tune`: a study from a spec, or nested CV around it; a full disk stops it cleanly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunelab.errors import SpecError, TunelabError
from tunelab.spec import Spec
from tunelab.tune._finish import StudyResult
from tunelab.tune._nested import nested_cv
from tunelab.tune._open import study_spec
from tunelab.tune._run import run_study
from tunelab.tune._study import disk_stopped, disk_trouble

__all__ = ["tune_study", "tune"]


def tune_study(
    spec: Spec | str | Path | Mapping[str, Any],
    *,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    trials: int | None = None,
    timeout: float | None = None,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    nested: int | None = None,
    quiet: bool = False,
) -> StudyResult:
    """Search the spec's ``tune.space``; refit the best on all non-test data; test it once.

    Args:
        spec: a spec with a ``tune`` section (path, mapping or Spec).
        out: the study folder (default ``studies/<name>``).
        overrides: ``dotted.path=value`` applied to the base spec before the search.
        trials: total number of trials (overrides ``tune.trials``); failed and pruned count.
        timeout: seconds for the search (overrides ``tune.timeout``).
        workers: processes on this machine sharing the study's storage.
        storage: an SQLAlchemy URL (e.g. ``postgresql://...``); default SQLite in the folder.
        resume: continue the study in ``out``; finished trials are kept, never re-run.
        nested: wrap the whole procedure in this many outer folds (nested cross-validation).
        quiet: no per-trial lines.

    Returns:
        A :class:`StudyResult`; its ``test_metrics`` are ``{name: {"value", "ci"}}`` like a
        run's metrics.
    """
    spec, params = study_spec(
        spec, overrides=overrides, trials=trials, timeout=timeout, workers=workers
    )
    folder = Path(out) if out is not None else Path("studies") / spec.name
    if nested and not spec.tune.refit:
        raise SpecError(
            "--nested scores each outer fold by the refit of its best: remove tune.refit: false"
        )
    try:
        if nested:
            return nested_cv(spec, params, folder, outer=nested, workers=workers, quiet=quiet)
        return run_study(
            spec, params, folder, workers=workers, storage=storage, resume=resume, quiet=quiet
        )
    except TunelabError:
        raise
    except Exception as exc:  # a full or read-only disk after the checks (the refit, a report)
        why = disk_trouble(exc)
        if why is None:
            raise
        raise disk_stopped(why, folder) from None


tune = tune_study  # the earlier name, kept (``tunelab.tune.tune``)
