"""What a finished run or study folder holds, as plain records for a tracker to write.

A :class:`Record` is one tracked run: the resolved spec flattened to ``a.b.c`` params, the
per-epoch curves (one :class:`Curve` per fold, the refit, or the holdout run's one), the final
metrics with their interval bounds (``test.accuracy``, ``test.accuracy.ci_low``,
``test.accuracy.ci_high``), tags, the files to keep and, for a study, one child per trial.
Everything is read from disk, so a folder is tracked the same way whichever executor
(processes, Ray, packed trials) produced it, and a finished folder can be tracked later.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunelab.errors import RunError
from tunelab.runs import read_json, seal_of_run, test_evaluations

__all__ = ["Curve", "Record", "run_record", "study_record", "record_of"]

# the files of a run folder a tracker keeps, in this order (those that exist)
RUN_FILES = ("spec.yaml", "env.json", "metrics.json", "history.jsonl", "report.html")
STUDY_FILES = ("spec.yaml", "best.yaml", "result.json", "seal.json", "study.json", "report.html")
WEIGHTS = "model.safetensors"
_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}


@dataclass
class Curve:
    """The per-epoch rows of one training pass: ``name`` None (a holdout run), ``fold_0``,
    ``refit``. Each row keeps history.jsonl's keys (``epoch``, ``train_loss``, ``val_rmse``...)."""

    name: str | None
    rows: list[dict[str, Any]]

    def scalars(self) -> list[tuple[int, str, str, float]]:
        """``(epoch, part, metric, value)`` of every finite number: ``val_rmse`` is part
        ``val``, metric ``rmse``; ``lr`` is part ``lr``, metric ``""``."""
        out = []
        for row in self.rows:
            epoch = int(row["epoch"])
            for key, value in row.items():
                if key in ("epoch", "fold", "seconds") or not _finite(value):
                    continue
                part, _, metric = key.partition("_")
                out.append((epoch, part, metric, float(value)))
        return out


@dataclass
class Record:
    """One tracked run (a training run, a study, or one trial of a study)."""

    name: str
    kind: str  # run | study | trial
    folder: Path
    params: dict[str, str]  # the resolved spec, flattened (``train.optimizer.lr``)
    hparams: dict[str, bool | int | float | str]  # what TensorBoard's hparams table shows
    curves: list[Curve] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)  # final values, with CI bounds
    tags: dict[str, str] = field(default_factory=dict)
    files: list[tuple[Path, str | None]] = field(default_factory=list)  # (file, folder in store)
    children: list[Record] = field(default_factory=list)
    status: str = "FINISHED"  # FINISHED | KILLED (pruned) | FAILED


def record_of(folder: str | Path) -> Record:
    """The record of a run folder (``metrics.json``) or a study folder (``result.json``)."""
    path = Path(folder)
    if (path / "result.json").is_file():
        return study_record(path)
    if (path / "metrics.json").is_file():
        return run_record(path)
    if (path / "outer_0").is_dir():
        raise RunError(
            f"{path} is a nested-CV folder; track one outer study at a time "
            f"(e.g. {path / 'outer_0'})"
        )
    raise RunError(
        f"{path} is neither a finished run (no metrics.json) nor a finished study (no result.json)"
    )


def run_record(folder: str | Path) -> Record:
    """A finished training run's record, read from its folder."""
    path = Path(folder)
    spec = _yaml(path / "spec.yaml")
    params = flatten(spec)
    metrics = final_metrics(read_json(path / "metrics.json"))
    splits = read_json(path / "splits.json") if (path / "splits.json").is_file() else {}
    sealed = seal_of_run(path)
    looks = test_evaluations(sealed) if sealed else int(any(k.startswith("test.") for k in metrics))
    tags = {
        "tunelab.kind": "run",
        "tunelab.folder": str(path.resolve()),
        "tunelab.split": str(splits.get("kind", "")),
        "tunelab.test_fingerprint": str((splits.get("test") or {}).get("fingerprint", "")),
        "tunelab.seal_count": str(looks),
    }
    if sealed is not None:
        tags["tunelab.sealed_by"] = str(sealed.resolve())
    files = [(path / f, None) for f in (*RUN_FILES, WEIGHTS) if (path / f).is_file()]
    return Record(
        name=str(spec.get("name") or path.name),
        kind="run",
        folder=path,
        params=params,
        hparams={k: _hparam(v) for k, v in leaves(spec).items()},
        curves=curves(path / "history.jsonl"),
        metrics=metrics,
        tags=tags,
        files=files,
    )


def study_record(folder: str | Path) -> Record:
    """A finished study's record (the parent) with one child per finished trial; the refit of
    the best (``best/``) gives the parent its curve, test metrics and weights."""
    path = Path(folder)
    spec = _yaml(path / "spec.yaml")
    result = read_json(path / "result.json")
    seal = read_json(path / "seal.json") if (path / "seal.json").is_file() else {}
    objective = str(result.get("objective") or "objective")
    params = flatten(spec)
    metrics = final_metrics({"test": result.get("test") or {}})
    if _finite(result.get("best_value")):
        metrics[f"best.{objective}"] = float(result["best_value"])
    bbc = (result.get("winners_curse") or {}).get("bbc") or {}
    if _finite(bbc.get("estimate")):
        key = f"bbc.{bbc.get('metric', objective)}"
        metrics[key] = float(bbc["estimate"])
        metrics |= {
            f"{key}.ci_{end}": float(bbc[end]) for end in ("low", "high") if _finite(bbc.get(end))
        }
    best_params = result.get("best_params") or {}
    params |= {f"best.{k}": _param(v) for k, v in flatten(best_params).items()}
    tags = {
        "tunelab.kind": "study",
        "tunelab.folder": str(path.resolve()),
        "tunelab.objective": objective,
        "tunelab.direction": str(result.get("direction", "")),
        "tunelab.best_trial": str(result.get("best_trial")),
        "tunelab.test_fingerprint": str(seal.get("test_fingerprint", "")),
        "tunelab.seal_count": str(len(seal.get("evaluations", []))),
    } | {f"tunelab.trials.{k.lower()}": str(v) for k, v in (result.get("counts") or {}).items()}
    best = path / "best"
    files = [(path / f, None) for f in STUDY_FILES if (path / f).is_file()]
    files += [(best / f, "best") for f in (*RUN_FILES, WEIGHTS) if (best / f).is_file()]
    record = Record(
        name=str(spec.get("name") or path.name),
        kind="study",
        folder=path,
        params=params,
        hparams={k: _hparam(v) for k, v in leaves(best_params).items()},
        curves=curves(best / "history.jsonl") if best.is_dir() else [],
        metrics=metrics,
        tags=tags,
        files=files,
    )
    if result.get("front") is not None:  # multi-objective: the front and the pick's rule
        record.tags["tunelab.pick"] = str((result.get("pick") or {}).get("rule"))
    base = flatten(spec)
    names = list(result.get("objectives") or {}) or [objective]
    front = {t["number"] for t in result.get("front") or []}
    for trial in sorted((path / "trials").glob("*/trial.json"), key=_number):
        child = _trial_record(trial.parent, record, base, names)
        if result.get("front") is not None:
            child.tags["tunelab.on_front"] = str(int(child.tags["tunelab.trial"]) in front).lower()
        record.children.append(child)
    return record


def _trial_record(folder: Path, study: Record, base: dict[str, str], names: list[str]) -> Record:
    """One trial: the study's spec with its sampled values, its curves and its value(s)."""
    info = read_json(folder / "trial.json")
    sampled = info.get("params") or {}
    values = info.get("values") or ([info["value"]] if info.get("value") is not None else [])
    metrics = {n: float(v) for n, v in zip(names, values, strict=False) if _finite(v)}
    if _finite(info.get("std")) and len(info.get("fold_values") or []) > 1:
        metrics[f"{names[0]}.std"] = float(info["std"])
    for key in ("refit_epochs", "seconds"):
        if _finite(info.get(key)):
            metrics[key] = float(info[key])
    number = int(info["number"])
    tags = {
        "tunelab.kind": "trial",
        "tunelab.folder": str(folder.resolve()),
        "tunelab.trial": str(number),
        "tunelab.state": str(info.get("state")),
    }
    if info.get("reason"):
        tags["tunelab.reason"] = str(info["reason"])[:5000]
    if info.get("error"):
        tags["tunelab.error"] = f"{info['error'].get('type')}: {info['error'].get('message')}"[
            :5000
        ]
    hparams = {k: _hparam(v) for k, v in leaves(sampled).items()}
    return Record(
        name=f"{study.name} trial {number}",
        kind="trial",
        folder=folder,
        params=base | {k: _param(v) for k, v in flatten(sampled).items()},
        hparams=hparams,
        curves=curves(folder / "history.jsonl"),
        metrics=metrics,
        tags=tags,
        status=_STATUS.get(str(info.get("state")), "FAILED"),
    )


def curves(path: Path) -> list[Curve]:
    """history.jsonl split into its training passes, in the order they were trained."""
    if not path.is_file():
        return []
    found: dict[str | None, list[dict]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            fold = row.get("fold")
            name = None if fold is None else ("refit" if fold == "refit" else f"fold_{fold}")
            found.setdefault(name, []).append(row)
    return [Curve(name, rows) for name, rows in found.items()]


def final_metrics(parts: dict[str, dict]) -> dict[str, float]:
    """``{part: {name: {value, ci}}}`` as ``part.name`` with ``.ci_low`` / ``.ci_high``."""
    out: dict[str, float] = {}
    for part, slots in parts.items():
        for name, slot in (slots or {}).items():
            if not isinstance(slot, dict) or not _finite(slot.get("value")):
                continue
            key = f"{part}.{name}"
            out[key] = float(slot["value"])
            ci = slot.get("ci") or {}
            out |= {
                f"{key}.ci_{end}": float(ci[end]) for end in ("low", "high") if _finite(ci.get(end))
            }
    return out


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """A nested mapping as ``{"a.b.c": "value"}``; lists and scalars as JSON text."""
    return {k: _param(v) for k, v in leaves(tree, prefix).items()}


def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{"a.b.c": value}`` (values as they are)."""
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out |= leaves(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: tree} if prefix else {}


def _param(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _hparam(value: Any) -> bool | int | float | str:
    """TensorBoard's hparams take bool, int, float or str."""
    if isinstance(value, bool | int | float | str):
        return value
    return _param(value)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(path: Path) -> int:
    return int(path.parent.name) if path.parent.name.isdigit() else -1


def _yaml(path: Path) -> dict:
    if not path.is_file():
        raise RunError(f"{path} is missing: the folder is not a finished tunelab run or study")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
