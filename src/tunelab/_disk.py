"""Files on disk: atomic writes, JSON, weights, run folders, and what a run records of its
environment.

Every file is written atomically (temporary file in the same folder, fsync, ``os.replace``) so
that a crash never leaves a half-written file under its final name. ``tunelab.runs`` re-exports
these names; the run and study folders they write are described there.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import RunError

FORMAT_VERSION = 1
RUN_FILES = (
    "spec.yaml",
    "env.json",
    "splits.json",
    "history.jsonl",
    "model.safetensors",
    "predictions.npz",
    "metrics.json",
    "preprocess.json",
    "target_scale.json",
    "diagnosis.json",
    "folds.json",
)


def redact(url: str) -> str:
    """The URL without a password: ``postgresql://user:***@host/db``."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        if ":" in creds:
            return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url


def command_line() -> list[str]:
    """``sys.argv`` as recorded in run and study files: every URL's password redacted."""
    return [redact(arg) for arg in sys.argv]


def _umask() -> int:
    """The process's umask: from /proc on Linux (reading it otherwise means setting it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: Path, mode: str = "w", *, fsync: bool = True) -> Iterator[Any]:
    """Write to a temporary file next to ``path``, fsync it, then rename it over ``path``.

    The rename alone already keeps a killed process from leaving a partial file; ``fsync``
    (the default) also keeps a power cut from leaving an empty one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        binary = "b" in mode
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
        ) as fh:
            yield fh
            fh.flush()
            # mkstemp makes the file private (0600); give it the mode any new file gets here
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any, *, fsync: bool = True) -> None:
    with atomic_write(path, fsync=fsync) as fh:
        json.dump(obj, fh, indent=2, default=_jsonable)
        fh.write("\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"missing file: {path}") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def append_jsonl(path: Path, row: dict, *, fsync: bool = False) -> None:
    """Append one JSON line and flush it to the OS: a killed process keeps every finished line.

    ``fsync=True`` also survives a power cut, at a few milliseconds per line.
    """
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=_jsonable) + "\n")
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_weights(path: Path, state_dict: dict) -> None:
    """Weights as safetensors (never pickle), written atomically."""
    from safetensors.torch import save

    tensors: dict = {}
    seen: set = set()
    for k, v in state_dict.items():
        v = v.detach().to("cpu").contiguous()
        storage = v.untyped_storage().data_ptr() if v.numel() else None
        # tied weights (views of one storage): safetensors refuses shared memory, so each
        # later one is stored as its own copy; loading fills every tied name with it
        tensors[k] = v.clone() if storage in seen else v
        if storage is not None:  # an empty tensor has no storage to share
            seen.add(storage)
    with atomic_write(path, "wb") as fh:
        fh.write(save(tensors, metadata={"format": "pt", "tunelab_format": str(FORMAT_VERSION)}))


def load_weights(path: Path) -> dict:
    """Read a safetensors file; anything else (e.g. a pickle) is refused without being run."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise RunError(f"weights file not found: {path}")
    data = path.read_bytes()
    try:
        return load(data)
    except (SafetensorError, ValueError, OSError) as exc:
        raise RunError(
            f"{path} is not a valid safetensors file ({exc}); tunelab never loads pickled weights"
        ) from None


def prepare_out_dir(path: Path) -> Path:
    """Create (or reuse) a run directory, refusing to clobber a folder that is not a run."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"output path {path} exists and is a file; choose a folder")
    # hidden entries (a probe or temporary file of a killed process) are not a user's files
    visible = path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir())
    if visible and not (path / "spec.yaml").exists():
        raise RunError(
            f"output folder {path} is not empty and does not hold a tunelab run; "
            "choose an empty or new folder"
        )
    ensure_writable(path, what="output folder")
    for name in RUN_FILES:  # a re-run into the same folder starts clean
        (path / name).unlink(missing_ok=True)
    return path


def ensure_writable(path: Path, *, what: str = "folder") -> None:
    """Create ``path`` and prove it writable now, before any work could be lost.

    The probe is written and fsynced (some file systems report a full disk only then); a
    read-only file system, a full disk or a missing permission is a :class:`RunError` that
    names the folder and says what to do.
    """
    import contextlib
    import errno

    path = Path(path)
    probe = path / ".write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
        hint = {
            errno.EROFS: "the file system is read-only; choose a folder on a writable disk",
            errno.ENOSPC: "the disk is full; free some space or choose a folder on another disk",
            errno.EDQUOT: "the disk quota is exceeded; free some space or choose another folder",
            errno.EACCES: "permission denied; choose a folder you may write to",
            errno.EPERM: "permission denied; choose a folder you may write to",
        }.get(exc.errno, f"{exc.strerror or exc}; choose another folder")
        raise RunError(f"cannot write to {what} {path}: {hint} (errno {exc.errno})") from None


def environment(*, device: str, seed: int) -> dict:
    """What is needed to re-run: versions, git sha, device, seed, command line."""
    packages = {}
    for name in (
        "tunelab",
        "torch",
        "numpy",
        "optuna",
        "pydantic",
        "scikit-learn",
        "scipy",
        "safetensors",
        "mlxtend",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    env = {
        "format": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": packages,
        "git_sha": _git_sha(),
        "device": device,
        "seed": seed,
        "command": command_line(),
        "cwd": os.getcwd(),
    }
    import torch

    env["threads"] = torch.get_num_threads()
    if device.startswith("cuda"):
        env["cuda_device"] = torch.cuda.get_device_name(torch.device(device))
    return env


def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
