"""A starting spec from the user's data (``tunelab init``): the data's facts
(``data/_inspect``), a proposal of split, model and training from them, then the proposal
rendered as YAML with a comment on every line. The text is read back through
:func:`load_spec` before it is returned, so what ``init`` writes is a spec that loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunelab.data._inspect import FolderFacts, TableFacts, inspect_data

__all__ = ["Starter", "starter_spec"]

_SMALL = 1000  # fewer samples than this: cross-validation instead of one holdout part
_LINEAR = 500  # fewer than this (tables, texts): a linear model first
_COLUMN = 40  # comments start here (after a longer line: two spaces after it)
_SIDE = 64  # images are resized so that their longer side is at most this


@dataclass
class Starter:
    """The proposed spec: its YAML text, and the notes to print (what was left out, why)."""

    text: str
    facts: TableFacts | FolderFacts
    notes: list[str] = field(default_factory=list)


class _Lines:
    """YAML lines, each with its comment, aligned."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add(self, depth: int, key: str, value: Any = None, comment: str = "") -> None:
        text = f"{'  ' * depth}{key}:"
        if value is not None:
            text += " " + _flow(value)
        self.rows.append((text, comment))

    def note(self, comment: str) -> None:
        self.rows.append(("", comment))

    def render(self) -> str:
        width = min(max(len(t) for t, _ in self.rows), _COLUMN) + 2  # a long line: its own
        out = [f"{t.ljust(width - 2)}  # {c}" if t else f"# {c}" for t, c in self.rows]
        return "\n".join(line.rstrip() for line in out) + "\n"


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def starter_spec(data: str | Path, *, target: str | None = None) -> Starter:
    """Inspect ``data`` and propose a spec that trains as is."""
    from tunelab.spec._load import load_spec

    facts = inspect_data(data, target=target)
    lines, notes = _Lines(), []
    name = re.sub(r"[^\w.\-]", "_", Path(data).stem or "data").strip("._") or "data"
    what = {"table": "rows", "images": "images", "text": "text files"}[facts.kind]
    lines.note(f"written by `tunelab init {data}`: {facts.rows} {what}, {facts.task}")
    lines.add(0, "name", name, "the default run folder is runs/<name>")
    lines.add(0, "seed", 0, "one seed for splits, initial weights and shuffling")
    if isinstance(facts, TableFacts):
        _table_data(lines, notes, facts, str(data))
    else:
        _folder_data(lines, notes, facts, str(data))
    _split(lines, facts)
    _model_and_train(lines, facts)
    text = lines.render()
    load_spec(yaml.safe_load(text))  # a proposal that does not load is a bug, never a file
    return Starter(text, facts, notes)


def _table_data(lines: _Lines, notes: list[str], facts: TableFacts, path: str) -> None:
    lines.add(0, "data", comment=f"a {facts.format} table, read whole")
    lines.add(1, "source", facts.format, "csv or parquet")
    lines.add(1, "path", path, "relative to the folder you run tunelab from")
    lines.add(1, "target", facts.target, _target_comment(facts))
    why = "strings or few whole numbers" if facts.classes else "many distinct numbers"
    lines.add(1, "task", facts.task, f"{why}: {facts.task}")
    if facts.ids:
        lines.add(1, "features", facts.features, f"{len(facts.features)} columns")
        cols = ", ".join(facts.ids)
        lines.note(f"left out, a different string in every row (an id?): {cols}")
        notes.append(f"id-like column(s) left out of data.features: {cols}")
    done = ["numbers standardised"]
    if facts.text_columns:
        done.append(f"one-hot: {', '.join(facts.text_columns)}")
    if facts.missing:
        cols = ", ".join(f"{c} ({n} missing)" for c, n in facts.missing.items())
        done.append(f"gaps filled: {cols}")
        notes.append(f"missing values filled per training part (data.preprocess): {cols}")
    lines.add(1, "preprocess", "auto", "; ".join(done) + "; fitted on each training part")
    if facts.target_missing:
        notes.append(
            f"the target `{facts.target}` is missing in {facts.target_missing} row(s): drop "
            "them before training (tunelab refuses a missing target)"
        )
        lines.note(f"the target is missing in {facts.target_missing} row(s): drop them first")


def _target_comment(facts: TableFacts) -> str:
    if facts.classes is None:
        return "a number to predict"
    shown = ", ".join(
        f"{c} ({n})" for c, n in zip(facts.classes, facts.class_counts or (), strict=True)
    )
    if len(facts.classes) > 6:
        shown = f"{len(facts.classes)} classes, the smallest {min(facts.class_counts or [0])}"
    return f"the class to predict: {shown}"


def _folder_data(lines: _Lines, notes: list[str], facts: FolderFacts, path: str) -> None:
    counts = ", ".join(f"{c} ({n})" for c, n in zip(facts.classes, facts.class_counts, strict=True))
    if len(facts.classes) > 6:
        counts = f"{len(facts.classes)} classes, the smallest {min(facts.class_counts)}"
    if facts.kind == "images":
        lines.add(0, "data", comment=f"an image folder: {counts}")
        lines.add(1, "source", "images", "one sub-folder of images per class")
        lines.add(1, "path", path, "relative to the folder you run tunelab from")
        height, width = facts.size or (0, 0)
        scale = min(1.0, _SIDE / max(height, width))
        size = [max(4, round(height * scale)), max(4, round(width * scale))]
        if facts.sizes > 1 or scale < 1:
            why = (
                f"{facts.sizes} sizes; most are {height}x{width}"
                if facts.sizes > 1
                else (f"from {height}x{width}")
            )
            lines.add(1, "size", size, f"every image resized to [H, W] ({why})")
        lines.add(1, "cache", "auto", "decoded once and kept in memory when they fit")
        lines.note(f"{'grayscale' if facts.grayscale else 'colour'} images: " + (
            "one channel" if facts.grayscale else "three channels"))  # fmt: skip
        return
    lines.add(0, "data", comment=f"a text folder: {counts}")
    lines.add(1, "source", "python", "a torch Dataset from a factory function")
    lines.add(1, "factory", "tunelab.data:text_folder", "each file as hashed bag-of-words counts")
    lines.add(1, "kwargs", comment="the factory's arguments")
    lines.add(2, "path", path, "one sub-folder of .txt files per class")
    lines.add(2, "features", 4096, "hash slots per text (a median file has "
              f"{facts.words} words)")  # fmt: skip
    lines.add(1, "task", "classification", "the class index of each sub-folder, sorted")
    lines.add(1, "cache", "memory", "the vectors are made once and kept in memory")
    notes.append(
        f"classes are numbered in sorted order: {', '.join(f'{i} = {c}' for i, c in enumerate(facts.classes))}"
    )


def _split(lines: _Lines, facts: TableFacts | FolderFacts) -> None:
    classify = facts.task == "classification"
    lines.add(0, "split", comment="the test part first, sealed; model choice never sees it")
    lines.add(1, "test", 0.2, "a fifth of the samples, tested once at the end")
    if classify:
        lines.add(1, "stratify", True, "every part keeps the class shares")
    small = facts.rows < (_SMALL if facts.kind != "images" else 300)
    if not small:
        lines.add(1, "val", 0.2, f"{facts.rows} samples: one holdout part for validation")
        return
    smallest = min(facts.class_counts or [facts.rows]) if classify else facts.rows
    folds = max(2, min(5, int(smallest * 0.8)))
    kind = "stratified" if classify else "kfold"
    lines.add(1, "cv", {"kind": kind, "folds": folds},
              f"{facts.rows} samples: {folds}-fold cross-validation instead of one val part")  # fmt: skip


def _model_and_train(lines: _Lines, facts: TableFacts | FolderFacts) -> None:
    regression = facts.task == "regression"
    if facts.kind == "images":
        height, width = facts.size or (8, 8)
        blocks = 2 if min(height, width) >= 16 else 1
        lines.add(0, "model", comment="a small convolutional network")
        lines.add(1, "name", "cnn", "conv -> ReLU -> max-pool blocks, then a linear layer")
        lines.add(1, "channels", 16, "channels of the first block (each block doubles them)")
        lines.add(1, "blocks", blocks, "each halves the image size")
        epochs, lr, batch = 15, 1e-3, 32
    elif facts.rows < _LINEAR:
        lines.add(0, "model", comment=f"{facts.rows} samples: a linear model is the baseline")
        lines.add(1, "name", "linear", "logistic regression" if not regression else "least squares")
        epochs, lr, batch = 100, 1e-2, 32
    else:
        lines.add(0, "model", comment="a small fully connected network")
        lines.add(1, "name", "mlp", "Linear -> ReLU per hidden layer")
        lines.add(1, "hidden", [64], "one hidden layer of 64")
        lines.add(1, "dropout", 0.1, "a little regularisation")
        epochs, lr, batch = 30, 1e-3, 64
    lines.add(0, "train", comment="the loss follows the task: "
              + ("mse" if regression else "cross-entropy"))  # fmt: skip
    lines.add(1, "epochs", epochs, "passes over the training part")
    lines.add(1, "batch_size", batch, "samples per step")
    lines.add(1, "optimizer", {"name": "adam", "lr": lr}, "Adam; tune lr first")
    metrics = ["rmse", "mae"] if regression else ["accuracy"]
    lines.add(1, "metrics", metrics, "logged every epoch (all metrics are evaluated at the end)")
