"""Featurizers of raw texts, fitted on a training part only (per fold in CV, like the
preprocessing statistics): the options a text source takes as ``data.featurize``, and the
fitted states, saved as JSON (never pickle) beside a run's weights as ``featurizer.json``.

A featurizer is its options (``kind`` tags them) and a fitted state: ``fit(options, texts)``
returns an object with ``transform(texts) -> float32 (n, *shape)``, ``shape`` (one sample's
features), ``to_json()`` and a ``from_json`` classmethod. :func:`fit_featurizer` and
:func:`featurizer_from_json` are the two doors; ``train`` calls them where a fold fits its
preprocessing.

Example:
    >>> fitted = fit_featurizer(TfidfOptions(min_df=1), np.array(["a cat", "a dog"]))
    >>> fitted.transform(np.array(["a cat"])).shape
    (1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tunelab.errors import DataError
from tunelab.plugins import Options

__all__ = [
    "TfidfOptions",
    "Featurize",
    "Tfidf",
    "fit_featurizer",
    "featurizer_from_json",
    "FEATURIZER_FILE",
]

FEATURIZER_FILE = "featurizer.json"


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
    """A fitted TF-IDF: the training part's terms (in column order) and their IDF."""

    options: TfidfOptions
    terms: list[str]
    idf: np.ndarray

    @classmethod
    def fit(cls, options: TfidfOptions, texts: np.ndarray) -> Tfidf:
        vectorizer = _vectorizer(options)
        try:
            vectorizer.fit(list(texts))
        except ValueError as exc:  # no term is left (min_df, stop words...)
            raise DataError(
                f"data.featurize (tfidf): {exc}; lower min_df or give longer texts"
            ) from None
        terms = vectorizer.get_feature_names_out().tolist()
        return cls(options, terms, np.asarray(vectorizer.idf_, np.float32))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.terms),)

    def transform(self, texts: np.ndarray) -> np.ndarray:
        vectorizer = _vectorizer(self.options, self.terms)
        vectorizer.idf_ = self.idf
        return vectorizer.transform(list(texts)).toarray()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tfidf",
            "options": self.options.model_dump(mode="json"),
            "terms": self.terms,
            "idf": self.idf.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tfidf:
        return cls(
            TfidfOptions(**data["options"]),
            list(data["terms"]),
            np.asarray(data["idf"], np.float32),
        )


_KINDS: dict[str, Any] = {"tfidf": Tfidf}
Featurize = TfidfOptions  # the options data.featurize takes


def fit_featurizer(options: Options, texts: np.ndarray) -> Any:
    """The featurizer of ``options`` fitted on ``texts`` (a training part's, and only those)."""
    return _KINDS[options.kind].fit(options, texts)


def featurizer_from_json(data: dict[str, Any]) -> Any:
    """A fitted featurizer from its ``to_json()`` (a run's ``featurizer.json``)."""
    return _KINDS[data["kind"]].from_json(data)
