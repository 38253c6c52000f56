"""Reading and writing run directories (the unit of record), and the seal's log.

A run directory holds ``spec.yaml``, ``env.json``, ``splits.json``, ``schema.json`` (what the
model takes: sample shape, columns, classes; read by ``predict``), ``history.jsonl``,
``model.safetensors``, ``preprocess.json``, ``predictions.npz`` and ``metrics.json``. Every file is written
atomically (temporary file in the same folder, fsync, ``os.replace``) so that a crash never
leaves a half-written file under its final name: the writing itself lives in ``_disk.py`` and
is re-exported here.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunelab._disk import (
    FORMAT_VERSION,
    append_jsonl,
    atomic_write,
    command_line,
    ensure_writable,
    environment,
    load_weights,
    prepare_out_dir,
    read_json,
    redact,
    save_weights,
    write_json,
)
from tunelab.errors import RunError
from tunelab.spec import SealRef, Spec, load_spec

if TYPE_CHECKING:
    from tunelab.train._predict import Predictions

__all__ = [
    "Run",
    "load_run",
    "redact",
    "command_line",
    "atomic_write",
    "write_json",
    "read_json",
    "append_jsonl",
    "save_weights",
    "load_weights",
    "environment",
    "prepare_out_dir",
    "ensure_writable",
    "FORMAT_VERSION",
    "log_test_evaluation",
    "test_evaluations",
    "seal_of_run",
    "missing_seal",
    "log_unsealed_look",
]


def log_test_evaluation(
    folder: Path,
    *,
    run: Path | str,
    metrics: dict | None = None,
    trial: int | None = None,
    fingerprint: str | None = None,
) -> int:
    """Append one evaluation of a study's sealed test part to ``seal.json``; returns the count.

    ``trial`` is the study's trial whose refit was evaluated (absent for later looks).
    ``fingerprint`` is the evaluated part's; it is recorded when it is not the sealed one
    (the data or the split was changed after the study, so its rows may overlap the seal's).
    """
    path = folder / "seal.json"
    record = read_json(path)
    entry: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(command_line()),
        "run": str(run),
    }
    if trial is not None:
        entry["trial"] = trial
    if metrics:
        entry["metrics"] = {k: v["value"] if isinstance(v, dict) else v for k, v in metrics.items()}
    if fingerprint is not None and fingerprint != record.get("test_fingerprint"):
        entry["test_fingerprint"] = fingerprint
    record.setdefault("evaluations", []).append(entry)
    write_json(path, record)
    return len(record["evaluations"])


def test_evaluations(folder: Path) -> int:
    """How many times a study's sealed test part has been evaluated."""
    path = folder / "seal.json"
    return len(read_json(path).get("evaluations", [])) if path.is_file() else 0


def seal_of_run(run_path: Path, spec: Spec | None = None) -> Path | None:
    """The study folder whose seal covers a run: the folder around it (``studies/x/best``,
    ``.../best_seeds/seed_1``), else the study its spec names (``evaluate.seal``), if that
    folder still holds the same seal. ``spec`` defaults to the run's ``spec.yaml``."""
    for folder in (run_path, run_path.parent, run_path.parent.parent):
        if (folder / "seal.json").is_file():
            return folder
    if spec is None:
        path = run_path / "spec.yaml"
        spec = load_spec(path) if path.is_file() else None
    ref = spec.evaluate.seal if spec is not None else None
    return Path(ref.study) if ref is not None and missing_seal(ref) is None else None


def missing_seal(ref: SealRef) -> str | None:
    """Why the seal a spec names (``evaluate.seal``) cannot take a look; None when it can."""
    path = Path(ref.study) / "seal.json"
    if not path.is_file():
        return f"{ref.study} holds no seal.json (the study folder was moved or deleted)"
    if read_json(path).get("test_fingerprint") != ref.fingerprint:
        return f"{path} is the seal of another test part (the folder holds another study now)"
    return None


def log_unsealed_look(
    run_path: Path, ref: SealRef, *, why: str, metrics: dict | None = None
) -> None:
    """Record in the run's ``env.json`` a look at a sealed test part whose seal is missing."""
    env_path = run_path / "env.json"
    env = read_json(env_path) if env_path.is_file() else {}
    entry: dict[str, Any] = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(command_line()),
        "study": ref.study,
        "fingerprint": ref.fingerprint,
        "why": why,
    }
    if metrics:
        entry["metrics"] = {k: v["value"] if isinstance(v, dict) else v for k, v in metrics.items()}
    env.setdefault("unlogged_test_looks", []).append(entry)
    write_json(env_path, env)


class Run:
    """A run directory on disk, read lazily.

    Example:
        >>> run = Run("runs/mnist")            # doctest: +SKIP
        >>> run.metrics["test"]["accuracy"]    # doctest: +SKIP
        {'value': 0.962, 'ci': None}
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "spec.yaml").is_file():
            what = "does not exist" if not self.path.exists() else "holds no spec.yaml"
            raise RunError(f"{self.path} is not a tunelab run: the folder {what}")
        env = self.path / "env.json"
        if env.is_file():
            fmt = read_json(env).get("format", FORMAT_VERSION)
            if fmt > FORMAT_VERSION:
                raise RunError(
                    f"{self.path} was written by a newer tunelab (format {fmt}; this one reads "
                    f"up to {FORMAT_VERSION}); upgrade tunelab to read it"
                )

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @property
    def spec(self) -> Spec:
        return load_spec(self.path / "spec.yaml")

    @property
    def history(self) -> list[dict]:
        path = self.path / "history.jsonl"
        if not path.is_file():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a torn last line after a crash
        return rows

    @property
    def metrics(self) -> dict:
        path = self.path / "metrics.json"
        return read_json(path) if path.is_file() else {}

    @property
    def splits(self) -> dict:
        return read_json(self.path / "splits.json")

    @property
    def env(self) -> dict:
        return read_json(self.path / "env.json")

    def predictions(self) -> dict[str, np.ndarray]:
        path = self.path / "predictions.npz"
        if not path.is_file():
            return {}
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def predict(self, data: Any, *, batch_size: int | None = None) -> Predictions:
        """The model's predictions on new data: a file path (``.csv``, ``.parquet``,
        ``.jsonl``, ``.npz``, ``.npy`` or an image folder), a pandas DataFrame with the
        training columns, a numpy array or tensor of samples, or a torch ``Dataset``.

        Returns :class:`tunelab.train.Predictions` (``labels``, ``scores``, ``to_frame()``).
        The model is built again on each call; for many calls keep a
        ``tunelab.train.Predictor(run)``.

        Example:
            >>> run = tunelab.load_run("runs/penguins")    # doctest: +SKIP
            >>> run.predict(frame).to_frame().head()       # doctest: +SKIP
        """
        from tunelab.train._predict import predict_run

        return predict_run(self, data, batch_size=batch_size)

    def write_predictions(self, arrays: dict[str, np.ndarray]) -> None:
        merged = self.predictions() | arrays
        buf = io.BytesIO()
        np.savez_compressed(buf, **merged)
        with atomic_write(self.path / "predictions.npz", "wb") as fh:
            fh.write(buf.getvalue())


def load_run(path: str | Path) -> Run:
    """The run saved in ``path`` (a folder written by ``tunelab.train``), read lazily.

    Raises:
        RunError: (a TunelabError) naming ``path`` when it is missing or holds no run.

    Example:
        >>> run = tunelab.load_run("runs/mnist")   # doctest: +SKIP
        >>> run.metrics["test"]["accuracy"]        # doctest: +SKIP
        {'value': 0.962, 'ci': {...}}
    """
    return Run(path)
