"""TF-IDF of raw texts, fitted on each training part only, through the per-part featurizer
hook (``data._tabular.fit_part``: every CV fold, the refit, a packed fold): the options a
text source takes as ``data.featurize``, the featurizer a text ``Dataset`` carries
(:class:`TextFeaturizer`, ``fit(rows) -> state`` on its ``table``'s ``text`` column) and the
fitted state (:class:`Tfidf`: the training part's terms and IDF), saved as JSON in
``preprocess.json`` (never pickle).

Example:
    >>> rows = texts_frame(np.array(["a cat", "a dog"], dtype=object))
    >>> state = TextFeaturizer(TfidfOptions(min_df=1)).fit(rows)
    >>> state.transform(rows, where="texts")[0].shape
    (2, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tunelab.data._preprocess import register_featurizer
from tunelab.errors import DataError
from tunelab.plugins import Options

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TfidfOptions", "Featurize", "Tfidf", "TextFeaturizer", "texts_frame"]


def texts_frame(texts: np.ndarray) -> pd.DataFrame:
    """The raw texts as the one-column table (``text``) the featurizer hook reads rows of."""
    import pandas as pd

    return pd.DataFrame({"text": np.asarray(texts, dtype=object)})


class TfidfOptions(Options):
    """TF-IDF of word n-grams (scikit-learn's ``TfidfVectorizer``), l2-normalised rows."""

    kind: Literal["tfidf"] = "tfidf"
    ngram_range: tuple[int, int] = (1, 2)
    """smallest and largest n-gram length, in words"""
    sublinear_tf: bool = True
    """term frequency as 1 + log(tf)"""
    min_df: int = Field(2, ge=1)
    """a term is kept when at least this many training texts hold it"""
    max_features: int | None = Field(20000, ge=1)
    """keep the most frequent terms of the training texts (None: all); the features are dense"""
    lowercase: bool = True
    """lower-case the texts before counting"""

    @model_validator(mode="after")
    def _range(self) -> TfidfOptions:
        low, high = self.ngram_range
        if not 1 <= low <= high:
            raise ValueError(
                f"ngram_range must be [low, high] with 1 <= low <= high; got {low, high}"
            )
        return self


def _vectorizer(options: TfidfOptions, vocabulary: list[str] | None = None):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=tuple(options.ngram_range),
        sublinear_tf=options.sublinear_tf,
        min_df=options.min_df,
        max_features=options.max_features,
        lowercase=options.lowercase,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


@dataclass
class Tfidf:
    """A fitted TF-IDF: the training part's terms (its columns, in order) and their IDF."""

    options: TfidfOptions
    terms: list[str]
    idf: np.ndarray
    kind = "tfidf"

    @property
    def width(self) -> int:
        return len(self.terms)

    @property
    def names(self) -> list[str]:
        return self.terms

    @property
    def scaled(self) -> list[bool]:
        """No column is standardised under ``preprocess: auto`` (rows are l2-normalised)."""
        return [False] * len(self.terms)

    def transform(self, table: pd.DataFrame, *, where: str = "") -> tuple[np.ndarray, dict]:
        """Every row's text as TF-IDF features (float32); no value is unknown to it."""
        vectorizer = _vectorizer(self.options, self.terms)
        vectorizer.idf_ = self.idf
        return vectorizer.transform(list(table["text"])).toarray(), {}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tfidf",
            "options": self.options.model_dump(mode="json"),
            "terms": self.terms,
            "idf": self.idf.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tfidf:
        idf = np.asarray(data["idf"], np.float32)
        return cls(TfidfOptions(**data["options"]), list(data["terms"]), idf)


@dataclass
class TextFeaturizer:
    """What a text ``Dataset`` carries as its ``featurizer``: ``fit(rows)`` on a training
    part's rows of the ``text`` table, and only those."""

    options: TfidfOptions

    def fit(self, rows: pd.DataFrame) -> Tfidf:
        vectorizer = _vectorizer(self.options)
        try:
            vectorizer.fit(list(rows["text"]))
        except ValueError as exc:  # no term is left (min_df...)
            raise DataError(
                f"data.featurize (tfidf): {exc}; lower min_df or give longer texts"
            ) from None
        terms = vectorizer.get_feature_names_out().tolist()
        return Tfidf(self.options, terms, np.asarray(vectorizer.idf_, np.float32))


Featurize = TfidfOptions  # the options data.featurize takes
register_featurizer("tfidf", Tfidf.from_json)
