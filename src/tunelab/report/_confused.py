"""The most confused examples of a classification run's evaluated part, as plain rows.

A mistake's rank is the model's probability of the class it wrongly predicted, highest first:
the most confident mistakes lead (ties: the lower probability of the true class first, then
the sample's index). Every classification run gets the sample index; a text run (its
``schema.json`` has kind ``text``) also gets an excerpt of each text, read again from the data
the spec names and used only when every part's content fingerprint still matches
``splits.json``. Otherwise the rows come without excerpts and ``note`` says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from tunelab.errors import TunelabError
from tunelab.runs import Run, read_json

__all__ = ["Confused", "most_confused", "run_texts", "excerpt"]

MOST_CONFUSED = 10  # rows in the report
EXCERPT_CHARS = 200  # characters of each text shown
_SPACE = re.compile(r"\s+")


@dataclass
class Confused:
    """One misclassified sample of the evaluated part."""

    index: int  # the sample's row in the data set (text-folder: files sorted by class, name)
    true: str  # class names
    predicted: str
    p_predicted: float  # the model's probability of the class it predicted
    p_true: float  # and of the true class
    excerpt: str | None = None  # the text's first characters (text runs only)


def excerpt(text: str, chars: int = EXCERPT_CHARS) -> str:
    """The first ``chars`` characters of ``text``, runs of white space as one space."""
    flat = _SPACE.sub(" ", text).strip()
    return flat if len(flat) <= chars else flat[:chars].rstrip() + "…"


def most_confused(
    y: np.ndarray,
    score: np.ndarray,
    index: np.ndarray,
    class_names: list[str],
    *,
    texts: np.ndarray | None = None,
    limit: int = MOST_CONFUSED,
) -> list[Confused]:
    """At most ``limit`` misclassified samples, the most confident mistakes first.

    ``y`` the true class ids, ``score`` the class probabilities (rows), ``index`` each row's
    sample index in the data set, ``texts`` all the data set's texts (indexed by ``index``).
    """
    y = np.asarray(y).astype(int)
    proba = np.asarray(score, dtype=float)
    index = np.asarray(index).astype(int)
    pred = proba.argmax(axis=1)
    rows = np.arange(len(y))
    p_pred, p_true = proba[rows, pred], proba[rows, y]
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.lexsort((index[wrong], p_true[wrong], -p_pred[wrong]))][:limit]

    def name(c: int) -> str:
        return class_names[c] if c < len(class_names) else str(c)

    return [
        Confused(
            index=int(index[i]),
            true=name(int(y[i])),
            predicted=name(int(pred[i])),
            p_predicted=float(p_pred[i]),
            p_true=float(p_true[i]),
            excerpt=None if texts is None else excerpt(str(texts[index[i]])),
        )
        for i in order
    ]


def run_texts(run: Run) -> tuple[np.ndarray | None, str | None]:
    """The texts of a text run's data set and ``None``, or ``None`` and why they are not shown
    (``None, None`` for a run that is not on texts)."""
    schema = run.path / "schema.json"
    if not schema.is_file() or read_json(schema).get("kind") != "text":
        return None, None
    from tunelab.data import Splits, load_dataset

    try:
        ds = load_dataset(run.spec.data, seed=run.spec.seed)
        Splits.from_json(run.splits, ds)  # the same texts, or a DataError
    except TunelabError as exc:
        return None, f"text excerpts not shown: {exc}"
    except Exception as exc:  # noqa: BLE001 - the rest of the page does not need the texts
        return None, f"text excerpts not shown: {type(exc).__name__}: {exc}"
    return ds.texts, None
