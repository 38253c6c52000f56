"""One study in one folder: open it, search, finish (see ``_open``, ``_search`` and
``_workers``, ``_finish``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from optuna.trial import TrialState

from tunelab.spec import Spec
from tunelab.train import Prepared
from tunelab.tune._console import StudyConsole
from tunelab.tune._finish import StudyResult, finish
from tunelab.tune._join import data_fingerprints, publish
from tunelab.tune._open import open_study, trial_context
from tunelab.tune._ray import run_ray
from tunelab.tune._search import run_worker
from tunelab.tune._space import Param
from tunelab.tune._study import counted_trials, fail_interrupted, quiet_optuna
from tunelab.tune._workers import run_processes, worker_payload

__all__ = ["run_study"]

WAIT_S = 1.0  # between looks at the trials of other machines' workers


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
    executor: dict | None = None,
) -> StudyResult:
    """One study in ``folder`` (see :func:`tunelab.tune.tune_study`); ``prep`` reuses already
    prepared data; ``executor``: ``{"name": "ray", "address", "cpus", "gpus"}`` for Ray."""
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
        _warn_oversubscribed(spec, opened.prep, workers, console)
        deadline = time.time() + spec.tune.timeout if spec.tune.timeout else None
        publish(  # what `tunelab worker` on another machine needs to join
            study,
            {
                "spec": spec.model_dump(mode="json"),
                "total": opened.total,
                "deadline": deadline,
                "seed": opened.seed,
                **data_fingerprints(opened.prep.ds, opened.prep.splits),
            },
        )
        console.start(study, total=opened.total, timeout=spec.tune.timeout)
        try:
            ctx = trial_context(spec, opened.params, opened.prep, folder)
            if executor and executor["name"] == "ray":
                options = {k: executor[k] for k in ("address", "cpus", "gpus")}
                payload = worker_payload(opened, deadline, workers=workers)
                run_ray(opened, payload, workers=workers, console=console, **options)
            elif workers == 1:
                run_worker(
                    ctx, study, folder, total=opened.total, deadline=deadline, on_trial=console.show
                )
            else:
                run_processes(opened, workers=workers, deadline=deadline, console=console)
            _wait_for_others(opened, ctx, deadline, console)
        finally:
            console.stop(study)
        # a worker that died after its last trial started leaves it RUNNING: mark it now
        for number in fail_interrupted(study):
            console.note(f"trial {number} was interrupted (its worker ended): marked FAIL")
        return finish(opened, console)


def _warn_oversubscribed(spec: Spec, prep: Prepared, workers: int, console) -> None:
    """On the CPU, workers x tune.trial_nproc processes over the cores run slower than fewer
    (each rank gets at least one thread): said once, the study still runs."""
    total = workers * spec.tune.trial_nproc
    cores = os.cpu_count() or 1
    if spec.tune.trial_nproc > 1 and prep.device.type == "cpu" and total > cores:
        console.note(
            f"{workers} worker(s) x tune.trial_nproc {spec.tune.trial_nproc} = {total} "
            f"processes on {cores} CPU cores: they share the cores (fewer workers run faster)"
        )


def _wait_for_others(opened, ctx, deadline: float | None, console: StudyConsole) -> None:
    """Trials that workers on other machines still run count toward the total: wait for them
    before the best is chosen. A trial of theirs interrupted meanwhile is retried here when no
    worker is left to take it. Returns at once when no other worker takes part."""
    study, waited = opened.study, False
    while True:
        marked = fail_interrupted(study)
        for number in marked:
            console.note(f"trial {number} was interrupted (its worker ended): marked FAIL")
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if running:
            if not waited:
                console.note(f"waiting for {len(running)} trial(s) of other workers to finish")
            waited = True
            console.poll()
            time.sleep(WAIT_S)
            continue
        # an interrupted trial marked just now or by a worker as it ended (its machine died
        # while this one's workers finished) needs its retry as much as one marked while waiting
        short = opened.total is not None and counted_trials(study.get_trials()) < opened.total
        if not waited and not marked and not short:
            return
        waited = False  # nothing runs now: the retries nobody took run here
        ran = run_worker(
            ctx, study, opened.folder, total=opened.total, deadline=deadline,
            on_trial=console.show,
        )  # fmt: skip
        if ran == 0:
            return
