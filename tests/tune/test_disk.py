"""A read-only or full disk under the output folder: a clear error, before work is lost.

The disks are real: a small tmpfs mounted read-only, or filled to the last byte, inside a
private mount namespace (``unshare``: a user namespace where the kernel allows it, or a plain
mount namespace as root), with the real ``tunelab`` running inside. The mount vanishes with the
namespace, so what a test needs to see afterwards is written to a log folder outside it.
Where no namespace can be made (a container without CAP_SYS_ADMIN or user namespaces), the
tests skip with that reason, and fail in CI (``TUNELAB_REQUIRE_NAMESPACES=1`` or ``CI=true``).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

EXE = shlex.quote(str(Path(sys.executable).with_name("tunelab")))
PYTHON = shlex.quote(sys.executable)
SPEC = {
    "name": "disk",
    "seed": 0,
    "data": {"source": "iris"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [32]},
    "train": {"epochs": 8, "batch_size": 4, "optimizer": {"name": "adam", "lr": 0.01}},
    "tune": {
        "trials": 5,
        "sampler": "random",
        "pruner": "none",
        "space": {"train.optimizer.lr": {"low": 1e-3, "high": 3e-2, "log": True}},
    },
}
# the storage read in place by plain Optuna, as a user would after the failure
READ_STORAGE = (
    "import json, sys, optuna; "
    "s = optuna.load_study(study_name='disk', storage='sqlite:///disk/s/study.db'); "
    "json.dump([{'number': t.number, 'state': t.state.name, 'value': t.value, "
    "'reason': t.user_attrs.get('fail_reason'), 'retry_of': t.user_attrs.get('retry_of')} "
    "for t in s.get_trials()], sys.stdout)"
)
COMPLETED = (  # the SQLite file read directly: fast enough to take just before the disk fills
    "import json, sqlite3, sys; "
    "con = sqlite3.connect('file:disk/s/study.db?mode=ro', uri=True, timeout=30); "
    "json.dump([n for (n,) in con.execute(\"SELECT number FROM trials WHERE state='COMPLETE'\")],"
    " sys.stdout)"
)


@cache
def namespace() -> tuple[str, ...] | None:
    """The first ``unshare`` command in which a tmpfs can be mounted, or None."""
    for command in (("unshare", "--user", "--map-root-user", "--mount"), ("unshare", "--mount")):
        try:
            probe = subprocess.run(
                [*command, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return command
    return None


@pytest.fixture(autouse=True)
def _needs_a_namespace(unavailable):
    """Skip where no mount namespace can be made; fail in CI (``TUNELAB_REQUIRE_NAMESPACES=1``
    or ``CI=true``)."""
    if namespace() is None:
        unavailable(
            "cannot mount a tmpfs here: needs root with CAP_SYS_ADMIN, or unprivileged user "
            "namespaces (unshare --user --map-root-user --mount)",
            variable="TUNELAB_REQUIRE_NAMESPACES",
        )


def run_in_namespace(tmp_path: Path, script: str, timeout: float = 400) -> Path:
    """Run ``script`` (sh) in ``tmp_path`` inside a private mount namespace; returns the log
    folder, where the script leaves what the test reads."""
    command = namespace()
    assert command is not None  # checked by `_needs_a_namespace`
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC), encoding="utf-8")
    (tmp_path / "logs").mkdir()
    (tmp_path / "disk").mkdir()
    proc = subprocess.run(
        [*command, "sh", "-uc", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp_path / "logs"


def tunelab(name: str, args: str) -> str:
    """A shell line running tunelab with one thread; logs/NAME.{out,err,rc} keep the result."""
    return (
        f"OMP_NUM_THREADS=1 {EXE} {args} > logs/{name}.out 2> logs/{name}.err; "
        f"echo $? > logs/{name}.rc\n"
    )


def result(logs: Path, name: str) -> tuple[int, str, str]:
    return (
        int((logs / f"{name}.rc").read_text()),
        (logs / f"{name}.out").read_text(),
        (logs / f"{name}.err").read_text(),
    )


FILL = "dd if=/dev/zero of=disk/fill bs=64k 2>/dev/null; true\n"  # ends with ENOSPC


def test_read_only_output_folder_is_refused_up_front(tmp_path):
    logs = run_in_namespace(
        tmp_path,
        "mount -t tmpfs -o size=1m tmpfs disk || exit 97\n"
        "mkdir disk/run disk/study\n"
        "mount -o remount,ro disk || exit 98\n"
        + tunelab("tune_new", "tune spec.yaml --out disk/s")
        + tunelab("tune_existing", "tune spec.yaml --out disk/study")
        + tunelab("train", "train spec.yaml --out disk/run"),
    )
    for name, what, path in (
        ("tune_new", "study folder", "disk/s"),
        ("tune_existing", "study folder", "disk/study"),
        ("train", "output folder", "disk/run"),
    ):
        rc, out, err = result(logs, name)
        assert rc == 2, (name, out, err)
        assert f"error: cannot write to {what} {path}: the file system is read-only" in err
        assert "choose a folder on a writable disk" in err
        assert "Traceback" not in err
        assert "epoch" not in out and "trial" not in out  # refused before any work


def test_full_disk_is_refused_up_front(tmp_path):
    logs = run_in_namespace(
        tmp_path,
        "mount -t tmpfs -o size=256k tmpfs disk || exit 97\n"
        "mkdir disk/run\n"
        + FILL
        + tunelab("tune", "tune spec.yaml --out disk/s")
        + tunelab("train", "train spec.yaml --out disk/run")
        + "df -k disk > logs/df\n",
    )
    assert " 100% " in (logs / "df").read_text()  # the disk was really full
    for name, what, path in (
        ("tune", "study folder", "disk/s"),
        ("train", "output folder", "disk/run"),
    ):
        rc, out, err = result(logs, name)
        assert rc == 2, (name, out, err)
        assert f"error: cannot write to {what} {path}: the disk is full" in err
        assert "Traceback" not in err
        assert "epoch" not in out and "trial" not in out


def test_disk_filling_during_a_study_stops_it_and_keeps_the_storage(tmp_path):
    logs = run_in_namespace(
        tmp_path,
        "mount -t tmpfs -o size=8m tmpfs disk || exit 97\n"
        # the study, in the background; the disk fills once two trials are recorded
        + f"OMP_NUM_THREADS=1 {EXE} tune spec.yaml --out disk/s --quiet"
        " > logs/full.out 2> logs/full.err &\n"
        "pid=$!\n"
        'while [ "$(ls disk/s/trials/*/trial.json 2>/dev/null | wc -l)" -lt 2 ]; do\n'
        "  kill -0 $pid 2>/dev/null || break; sleep 0.05\n"
        "done\n"
        f"{PYTHON} -c {shlex.quote(COMPLETED)} > logs/before.json\n"
        + FILL
        + "wait $pid; echo $? > logs/full.rc\n"
        "df -k disk > logs/df\n"
        # the storage opens and reads in place, the disk still full
        f"{PYTHON} -c {shlex.quote(READ_STORAGE)} > logs/while_full.json\n"
        # a resume on the full disk is refused up front; with space again it finishes
        + tunelab("resume_full", "tune spec.yaml --out disk/s --resume")
        + "rm disk/fill\n"
        + tunelab("resume", "tune spec.yaml --out disk/s --resume")
        + f"{PYTHON} -c {shlex.quote(READ_STORAGE)} > logs/after.json\n",
    )
    assert " 100% " in (logs / "df").read_text()
    rc, out, err = result(logs, "full")
    assert rc == 2, out + err
    assert "error: the disk is full" in err and "the study in disk/s stopped" in err
    assert "--resume" in err and "Traceback" not in err

    before = json.loads((logs / "before.json").read_text())
    assert len(before) >= 2
    while_full = {t["number"]: t for t in json.loads((logs / "while_full.json").read_text())}
    for n in before:  # every trial completed before the disk filled is still there
        assert while_full[n]["state"] == "COMPLETE"
    stopped = [n for n, t in while_full.items() if t["state"] != "COMPLETE"]
    assert len(stopped) <= 1  # the trial that ran when the disk filled, if any

    rc, out, err = result(logs, "resume_full")
    assert rc == 2 and "cannot write to study folder disk/s: the disk is full" in err, err

    rc, out, err = result(logs, "resume")
    assert rc == 0, out + err
    after = {t["number"]: t for t in json.loads((logs / "after.json").read_text())}
    # the total of finished trials, exactly: each interrupted one ran once more (retry_of)
    finished = [n for n, t in after.items() if not (t["reason"] or "").startswith("interrupted")]
    assert len(finished) == SPEC["tune"]["trials"]
    assert sorted(t["retry_of"] for t in after.values() if t["retry_of"] is not None) == sorted(
        stopped
    )
    for n, trial in while_full.items():
        if trial["state"] == "COMPLETE":  # kept, not re-run
            assert after[n] == trial
    for n in stopped:
        assert after[n]["state"] == "FAIL" and after[n]["reason"].startswith("interrupted")
    assert all(t["state"] == "COMPLETE" for n, t in after.items() if n not in stopped)


def test_disk_filling_during_a_run_is_a_message_not_a_traceback(tmp_path):
    logs = run_in_namespace(
        tmp_path,
        "mount -t tmpfs -o size=2m tmpfs disk || exit 97\n"
        + f"OMP_NUM_THREADS=1 {EXE} train spec.yaml --out disk/r --set train.epochs=400"
        " > logs/train.out 2> logs/train.err &\n"
        "pid=$!\n"
        'while [ "$(cat disk/r/history.jsonl 2>/dev/null | wc -l)" -lt 2 ]; do\n'
        "  kill -0 $pid 2>/dev/null || break; sleep 0.05\n"
        "done\n" + FILL + "wait $pid; echo $? > logs/train.rc\n",
    )
    rc, out, err = result(logs, "train")
    assert rc == 2, (out, err)
    assert "error: the disk is full" in err and "--resume" in err
    assert "Traceback" not in err and "unexpected" not in err
