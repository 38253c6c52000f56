"""``--executor ray``: trials scheduled as Ray tasks; the study stays in its RDB storage.

Ray only schedules. Each task runs one trial with the same loop as a local worker
(:func:`run_worker` with ``limit=1``: counting, creating under the study's locks, running,
telling), so totals, retries of interrupted trials and failures behave as with ``--workers``.
A Ray worker process keeps the data, the trial context and its sampler between tasks (one load
per process, not per trial). The driver keeps ``workers`` tasks in flight, each asking for
``cpus``/``gpus`` of the cluster, until a task finds nothing left to run.

Ctrl-C or SIGTERM cancels the tasks (force: their processes end), marks their trials FAIL
``interrupted``, and leaves the study resumable with ``--resume``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from tunelab.errors import SpecError
from tunelab.tune._console import StudyConsole
from tunelab.tune._open import OpenStudy
from tunelab.tune._study import fail_interrupted

__all__ = ["run_ray", "require_ray"]

_state: dict[str, Any] = {}  # in a Ray worker process: the study it serves, kept across tasks


def require_ray():
    try:
        import ray
    except ImportError:
        raise SpecError(
            "--executor ray: Ray is not installed; install it with pip install tunelab[ray]"
        ) from None
    return ray


def run_ray(
    opened: OpenStudy,
    payload: dict,
    *,
    workers: int,
    console: StudyConsole,
    address: str | None = None,
    cpus: float = 1,
    gpus: float = 0,
) -> None:
    """Run the study's trials as Ray tasks, ``workers`` at a time (see the module docstring)."""
    ray = require_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(_trial_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
    payload = payload | {"threads": max(1, int(cpus)), "joined": True}
    pending = [task.remote(payload) for _ in range(workers)]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            console.poll()
            for ref in done:
                if ray.get(ref) > 0:  # it ran a trial: there may be more to run
                    pending.append(task.remote(payload))
    except BaseException:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        _mark_cancelled(opened)
        raise
    finally:
        if started:
            ray.shutdown()


def _mark_cancelled(opened: OpenStudy) -> None:
    """The cancelled tasks' trials FAIL ``interrupted`` once their processes are gone."""
    from optuna.trial import TrialState

    stop = time.time() + 10
    while time.time() < stop:
        fail_interrupted(opened.study)
        if not opened.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return
        time.sleep(0.2)


def _trial_task(payload: dict) -> int:
    """A Ray task: one trial of the study (none when the total or the deadline is reached)."""
    from tunelab.tune._search import run_worker
    from tunelab.tune._workers import worker_state

    key = f"{payload['storage']}|{payload['spec']['name']}|{payload['folder']}"
    if _state.get("key") != key:
        _state.clear()
        _state.update(key=key, parts=worker_state(payload | {"index": 0}))
    ctx, study, folder = _state["parts"]
    return run_worker(
        ctx, study, folder, total=payload["total"], deadline=payload["deadline"], limit=1
    )
