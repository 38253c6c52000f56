"""One study in one folder: open it, search, finish (see ``_open``, ``_search`` and
``_workers``, ``_finish``)."""

from __future__ import annotations

import time
from pathlib import Path

from tunelab.spec import Spec
from tunelab.train import Prepared
from tunelab.tune._console import StudyConsole
from tunelab.tune._finish import StudyResult, finish
from tunelab.tune._open import open_study, trial_context
from tunelab.tune._search import run_worker
from tunelab.tune._space import Param
from tunelab.tune._study import fail_interrupted, quiet_optuna
from tunelab.tune._workers import run_processes

__all__ = ["run_study"]


def run_study(
    spec: Spec,
    params: list[Param],
    folder: Path,
    *,
    workers: int = 1,
    storage: str | None = None,
    resume: bool = False,
    quiet: bool = False,
    prep: Prepared | None = None,
) -> StudyResult:
    """One study in ``folder`` (see :func:`tunelab.tune.tune_study`); ``prep`` reuses already
    prepared data."""
    console = StudyConsole(quiet=quiet)
    with quiet_optuna():
        opened = open_study(
            spec, params, folder, workers=workers, storage=storage, resume=resume, prep=prep
        )
        study, spec = opened.study, opened.spec
        console.header(
            spec,
            opened.prep,
            folder,
            metric=opened.metric,
            maximize=opened.maximize,
            total=opened.total,
            workers=workers,
            resumed=opened.done_before if resume else None,
            interrupted=opened.interrupted,
        )
        deadline = time.time() + spec.tune.timeout if spec.tune.timeout else None
        console.start(study, total=opened.total, timeout=spec.tune.timeout)
        try:
            if workers == 1:
                ctx = trial_context(spec, opened.params, opened.prep, folder)
                run_worker(
                    ctx, study, folder, total=opened.total, deadline=deadline, on_trial=console.show
                )
            else:
                run_processes(opened, workers=workers, deadline=deadline, console=console)
        finally:
            console.stop(study)
        # a worker that died after its last trial started leaves it RUNNING: mark it now
        for number in fail_interrupted(study):
            console.note(f"trial {number} was interrupted (its worker ended): marked FAIL")
        return finish(opened, console)
