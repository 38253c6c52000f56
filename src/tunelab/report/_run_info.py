"""What a run's report shows, as plain numbers read from its folder (no training, no drawing)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunelab.evaluate import METRICS
from tunelab.report._confused import Confused, most_confused, run_texts
from tunelab.runs import Run, read_json, seal_of_run, test_evaluations

__all__ = ["RunInfo", "Part", "MetricRow", "ClassRow", "Curve", "run_info"]

# curves and reliability bins carry at most this many points each: a report stays small
MAX_CURVE_POINTS = 200


@dataclass
class Part:
    """One part of the split: its size, class balance and content fingerprint."""

    name: str
    size: int
    fingerprint: str | None
    classes: dict[str, int] | None = None  # class name -> count


@dataclass
class MetricRow:
    split: str
    metric: str
    value: float
    low: float | None = None
    high: float | None = None
    level: float | None = None


@dataclass
class ClassRow:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Curve:
    """A ROC or precision-recall curve of one class against the rest (or of the positive class)."""

    label: str
    x: list[float]
    y: list[float]
    area: float


@dataclass
class RunInfo:
    """Everything a run's report shows. ``history`` maps a series name (``""`` for a plain
    holdout run, ``"fold 1"`` ..., ``"refit"``) to its per-epoch rows."""

    name: str
    path: str
    task: str
    dataset: str
    created: str | None
    spec_text: str
    env: dict[str, str]
    split_kind: str
    parts: list[Part]
    duplicates: str | None
    history: dict[str, list[dict]]
    curve_keys: list[str]  # e.g. ["loss", "accuracy"]: one chart each, train and val lines
    metrics: list[MetricRow]
    folds: dict | None  # per-fold validation metrics with mean and std (cross-validated runs)
    eval_split: str | None  # the part the confusion matrix, tables and curves are drawn from
    class_names: list[str] = field(default_factory=list)
    confusion: list[list[int]] | None = None  # rows: true class, columns: predicted class
    per_class: list[ClassRow] = field(default_factory=list)
    roc: list[Curve] = field(default_factory=list)
    pr: list[Curve] = field(default_factory=list)
    reliability: dict[str, dict] = field(default_factory=dict)  # split -> bins, ECE, Brier
    residuals: dict | None = None  # regression: {"y": [...], "pred": [...]}, sampled
    diagnosis: dict | None = None
    loss_scale: str | None = None  # which scale the loss is on (a standardised target)
    seal: dict | None = None  # {"study": path, "evaluations": n} when the test part is sealed
    # classification: the evaluated part's most confident mistakes (report/_confused.py)
    confused: list[Confused] = field(default_factory=list)
    confused_note: str | None = None  # why a text run's rows have no excerpts


def run_info(path: str | Path) -> RunInfo:
    """Read a run folder into a :class:`RunInfo`."""
    run = Run(path)
    spec = run.spec
    env = run.env if (run.path / "env.json").is_file() else {}
    splits = run.splits
    preds = run.predictions()
    task = _task_of(run.metrics, preds)
    class_names, labels_of = _labels(run, splits, task)
    history = _series(run.history)
    folds_path = run.path / "folds.json"
    folds = read_json(folds_path) if folds_path.is_file() else None
    diag_path = run.path / "diagnosis.json"
    scale_path = run.path / "target_scale.json"
    info = RunInfo(
        name=run.path.name,
        path=str(run.path),
        task=task,
        dataset=str(splits.get("dataset", spec.data.source)),
        created=env.get("created"),
        spec_text=(run.path / "spec.yaml").read_text(encoding="utf-8"),
        env=_env_rows(env),
        split_kind=str(splits.get("kind", "")),
        parts=_parts(splits, labels_of, class_names),
        duplicates=_duplicates(splits.get("duplicates")),
        history=history,
        curve_keys=_curve_keys(history),
        metrics=_metric_rows(run.metrics),
        folds=folds,
        eval_split=next((s for s in ("test", "val") if f"{s}_score" in preds), None),
        class_names=class_names,
        diagnosis=read_json(diag_path) if diag_path.is_file() else None,
        loss_scale=read_json(scale_path).get("note") if scale_path.is_file() else None,
    )
    if info.eval_split is not None:
        y = preds[f"{info.eval_split}_y"]
        score = preds[f"{info.eval_split}_score"]
        if task == "classification":
            _classification_views(info, y, score)
            if f"{info.eval_split}_index" in preds:
                texts, info.confused_note = run_texts(run)
                info.confused = most_confused(
                    y, score, preds[f"{info.eval_split}_index"], info.class_names, texts=texts
                )
        else:
            info.residuals = _residuals(y, score)
    calibration = run.path / "calibration.json"
    if calibration.is_file():
        data = read_json(calibration)
        info.reliability = {
            part: {
                "ece": data[part]["ece"],
                "brier": data[part]["brier"],
                **data[part]["reliability"],
            }
            for part in ("val", "test")
            if part in data
        }
    folder = seal_of_run(run.path)
    if folder is not None:
        info.seal = {"study": str(folder), "evaluations": test_evaluations(folder)}
    return info


def _task_of(metrics: dict, preds: dict[str, np.ndarray]) -> str:
    """The task of the metrics the run logged (or of its saved labels: class indices are ints)."""
    for part in metrics.values():
        for name in part:
            if name in METRICS:
                return METRICS[name].task
    labels = [v for k, v in preds.items() if k.endswith("_y")]
    return "classification" if labels and labels[0].dtype.kind in "iu" else "regression"


def _labels(run: Run, splits: dict, task: str) -> tuple[list[str], dict[int, int]]:
    """Class names, and the labels of the samples the run saved predictions for (the class
    balance of runs written before ``splits.json`` recorded it)."""
    if task != "classification":
        return [], {}
    recorded = [splits.get("test", {}), *(f["train"] for f in splits.get("folds", []))]
    names = next((list(p["classes"]) for p in recorded if p.get("classes")), None)
    preds = run.predictions()
    labels: dict[int, int] = {}
    for part in ("val", "test"):
        if f"{part}_index" in preds:
            labels.update(
                zip(preds[f"{part}_index"].tolist(), preds[f"{part}_y"].tolist(), strict=True)
            )
    if names is None:
        n_classes = max((preds[k].shape[1] for k in preds if k.endswith("_score")), default=0)
        names = [str(i) for i in range(n_classes)]
    return names, labels


def _parts(splits: dict, labels: dict[int, int], names: list[str]) -> list[Part]:
    def part(name: str, entry: dict) -> Part:
        classes = entry.get("classes")
        if classes is None and labels and entry.get("indices") is not None:
            seen = [labels[i] for i in entry["indices"] if i in labels]
            if len(seen) == len(entry["indices"]):
                counts = Counter(seen)
                classes = {
                    (names[c] if c < len(names) else str(c)): counts[c] for c in sorted(counts)
                }
        return Part(name, int(entry["size"]), entry.get("fingerprint"), classes)

    folds = splits.get("folds", [])
    parts = []
    for k, fold in enumerate(folds):
        tag = f" (fold {k + 1})" if len(folds) > 1 else ""
        parts += [part(f"train{tag}", fold["train"]), part(f"val{tag}", fold["val"])]
    if splits.get("test", {}).get("size"):
        parts.append(part("test (sealed)", splits["test"]))
    return parts


def _duplicates(record: dict | None) -> str | None:
    if not record:
        return None
    from tunelab.data import describe_duplicates

    return describe_duplicates(record)


def _series(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in rows:
        fold = row.get("fold")
        key = "" if fold is None else ("refit" if fold == "refit" else f"fold {int(fold) + 1}")
        out.setdefault(key, []).append(row)
    return out


def _curve_keys(history: dict[str, list[dict]]) -> list[str]:
    keys: list[str] = []
    for rows in history.values():
        for row in rows:
            for k in row:
                for side in ("train_", "val_"):
                    if k.startswith(side) and k[len(side) :] not in keys:
                        keys.append(k[len(side) :])
    return sorted(keys, key=lambda k: (k != "loss", keys.index(k)))


def _env_rows(env: dict) -> dict[str, str]:
    rows = {
        k: str(env[k]) for k in ("created", "python", "platform", "device", "git_sha") if k in env
    }
    for name, version in (env.get("packages") or {}).items():
        rows[name] = str(version)
    if env.get("command"):
        rows["command"] = (
            " ".join(env["command"]) if isinstance(env["command"], list) else str(env["command"])
        )
    return rows


def _metric_rows(metrics: dict) -> list[MetricRow]:
    rows = []
    for split in ("val", "test", "train"):
        for name, slot in (metrics.get(split) or {}).items():
            ci = slot.get("ci") or {}
            rows.append(
                MetricRow(
                    split, name, slot["value"], ci.get("low"), ci.get("high"), ci.get("level")
                )
            )
    return rows


def _classification_views(info: RunInfo, y: np.ndarray, score: np.ndarray) -> None:
    """Confusion matrix, per-class table, ROC and precision-recall curves of one part."""
    from sklearn.metrics import (
        average_precision_score,
        confusion_matrix,
        precision_recall_curve,
        precision_recall_fscore_support,
        roc_auc_score,
        roc_curve,
    )

    y = np.asarray(y).astype(int)
    proba = np.asarray(score, dtype=float)
    k = proba.shape[1]
    if len(info.class_names) != k:
        info.class_names = [str(i) for i in range(k)]
    pred = proba.argmax(axis=1)
    labels = list(range(k))
    info.confusion = confusion_matrix(y, pred, labels=labels).tolist()
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    info.per_class = [
        ClassRow(info.class_names[c], float(p[c]), float(r[c]), float(f[c]), int(s[c]))
        for c in labels
    ]
    # one class against the rest; a two-class problem needs only its positive class
    for c in [1] if k == 2 else labels:
        truth = (y == c).astype(int)
        if truth.min() == truth.max():  # the class is absent (or alone): no curve exists
            continue
        fpr, tpr, _ = roc_curve(truth, proba[:, c])
        precision, recall, _ = precision_recall_curve(truth, proba[:, c])
        name = info.class_names[c]
        info.roc.append(Curve(name, *_thin(fpr, tpr), float(roc_auc_score(truth, proba[:, c]))))
        info.pr.append(
            Curve(
                name,
                *_thin(recall[::-1], precision[::-1]),
                float(average_precision_score(truth, proba[:, c])),
            )
        )


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """At most ``MAX_CURVE_POINTS`` points, always keeping both ends."""
    if len(x) > MAX_CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_CURVE_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return [round(float(v), 5) for v in x], [round(float(v), 5) for v in y]


def _residuals(y: np.ndarray, score: np.ndarray) -> dict:
    y = np.asarray(y, dtype=float).reshape(len(y), -1)[:, 0]
    pred = np.asarray(score, dtype=float).reshape(len(score), -1)[:, 0]
    if len(y) > 2000:  # a scatter of 2,000 points says all a scatter can
        keep = np.random.default_rng(0).choice(len(y), 2000, replace=False)
        y, pred = y[keep], pred[keep]
    return {"y": [float(v) for v in y], "pred": [float(v) for v in pred]}
