"""TF-IDF or word-id sequences of raw texts, fitted on each training part only, through the per-part featurizer
hook (``data._tabular.fit_part``: every CV fold, the refit, a packed fold): the options a
text source takes as ``data.featurize``, the featurizer a text ``Dataset`` carries
(:class:`TextFeaturizer`, ``fit(rows) -> state`` on its ``table``'s ``text`` column) and the
fitted state (:class:`Tfidf`: the training part's terms and IDF; :class:`Vocabulary`: its
words), saved as JSON in
``preprocess.json`` (never pickle).

Example:
    >>> rows = texts_frame(np.array(["a cat", "a dog"], dtype=object))
    >>> state = TextFeaturizer(TfidfOptions(min_df=1)).fit(rows)
    >>> state.transform(rows, where="texts")[0].shape
    (2, 2)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from tunelab.data._preprocess import register_featurizer
from tunelab.data._pretrained import Pretrained, PretrainedOptions
from tunelab.errors import DataError
from tunelab.plugins import Options

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TfidfOptions",
    "TokensOptions",
    "Featurize",
    "Tfidf",
    "Vocabulary",
    "TextFeaturizer",
    "texts_frame",
    "PAD",
    "OOV",
    "check_preprocess",
]


def texts_frame(texts: np.ndarray) -> pd.DataFrame:
    """The raw texts as the one-column table (``text``) the featurizer hook reads rows of."""
    import pandas as pd

    return pd.DataFrame({"text": np.asarray(texts, dtype=object)})


class TfidfOptions(Options):
    """TF-IDF of word n-grams (scikit-learn's ``TfidfVectorizer``), l2-normalised rows."""

    kind: Literal["tfidf"] = "tfidf"
    """tfidf: TF-IDF of word n-grams, for linear / mlp"""
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


class TokensOptions(Options):
    """Word-id sequences (for ``textcnn``): a vocabulary of the training part's words, each
    text its ids truncated or padded to ``max_length``."""

    kind: Literal["tokens"]
    """tokens: word ids, for textcnn"""
    lowercase: bool = True
    """lower-case the texts before splitting them into words"""
    min_count: int = Field(2, ge=1)
    """a word is in the vocabulary when it occurs at least this often in the training texts"""
    max_size: int = Field(20000, ge=1)
    """keep the most frequent words (ties: alphabetical); ids 0 and 1 are padding and
    out-of-vocabulary"""
    max_length: int = Field(400, ge=5)
    """words per text: longer texts are truncated, shorter ones padded with id 0"""


PAD, OOV = 0, 1
_WORD = re.compile(r"\w+")


def _words(text: str, lowercase: bool) -> list[str]:
    return _WORD.findall(text.lower() if lowercase else text)


@dataclass
class Vocabulary:
    """A fitted word vocabulary: ``words[k]`` has id ``k + 2`` (0 padding, 1 unknown)."""

    options: TokensOptions
    words: list[str]
    kind = "tokens"
    sequences = True  # variable-length int64 rows: a sequence model's input

    @property
    def width(self) -> int:
        """The longest sequence (a part's rows are as long as its longest text)."""
        return self.options.max_length

    @property
    def names(self) -> list[str]:
        return [f"token_{t}" for t in range(self.options.max_length)]

    @property
    def scaled(self) -> list[bool]:
        """Ids are never standardised."""
        return [False] * self.options.max_length

    @property
    def size(self) -> int:
        """Ids in use: the words, padding and unknown."""
        return len(self.words) + 2

    def transform(self, table: pd.DataFrame, *, where: str = "") -> tuple[np.ndarray, dict]:
        """Every row's text as its word ids (int64; at most ``max_length``), padded with 0 at
        the end to the longest row; training and prediction cut each batch to its own longest
        (``train._batches``)."""
        index = {w: k + 2 for k, w in enumerate(self.words)}
        length = self.options.max_length
        rows = [
            [index.get(w, OOV) for w in _words(text, self.options.lowercase)[:length]]
            for text in table["text"]
        ]
        ids = np.zeros((len(rows), max([1, *map(len, rows)])), np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids, {}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "tokens",
            "options": self.options.model_dump(mode="json"),
            "words": self.words,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocabulary:
        return cls(TokensOptions(**data["options"]), list(data["words"]))

    @classmethod
    def fit(cls, options: TokensOptions, texts: list[str]) -> Vocabulary:
        counts = Counter(w for t in texts for w in _words(t, options.lowercase))
        kept = sorted(
            (w for w, c in counts.items() if c >= options.min_count), key=lambda w: (-counts[w], w)
        )
        if not kept:
            raise DataError(
                f"data.featurize (tokens): no word occurs min_count={options.min_count} times "
                "in the training texts; lower min_count"
            )
        return cls(options, kept[: options.max_size])


@dataclass
class TextFeaturizer:
    """What a text ``Dataset`` carries as its ``featurizer``: ``fit(rows)`` on a training
    part's rows of the ``text`` table, and only those."""

    options: TfidfOptions | TokensOptions | PretrainedOptions

    @property
    def sequences(self) -> bool:
        """Whether the fitted state makes token-id sequences (a sequence model's input)."""
        return isinstance(self.options, (TokensOptions, PretrainedOptions))

    def fit(self, rows: pd.DataFrame) -> Tfidf | Vocabulary | Pretrained:
        if isinstance(self.options, PretrainedOptions):  # learns nothing from the rows
            return Pretrained.fit(self.options)
        if isinstance(self.options, TokensOptions):
            return Vocabulary.fit(self.options, list(rows["text"]))
        vectorizer = _vectorizer(self.options)
        try:
            vectorizer.fit(list(rows["text"]))
        except ValueError as exc:  # no term is left (min_df...)
            raise DataError(
                f"data.featurize (tfidf): {exc}; lower min_df or give longer texts"
            ) from None
        terms = vectorizer.get_feature_names_out().tolist()
        return Tfidf(self.options, terms, np.asarray(vectorizer.idf_, np.float32))


def check_preprocess(featurize: Options, preprocess: Any) -> None:
    """Word and token ids are codes, not quantities: ``preprocess: standardize`` is refused
    for them."""
    kind = getattr(featurize, "kind", None)
    if kind in ("tokens", "pretrained") and preprocess == "standardize":
        raise ValueError(
            f"data.featurize is {kind}: {'word' if kind == 'tokens' else 'token'} ids are never "
            "standardised; set data.preprocess: auto or none"
        )


def _featurize_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("kind", "tfidf")
    return getattr(value, "kind", None)


# the options data.featurize takes, told apart by kind before validating (one error, not one
# per kind); a mapping without kind is tfidf
Featurize = Annotated[
    Annotated[TfidfOptions, Tag("tfidf")]
    | Annotated[TokensOptions, Tag("tokens")]
    | Annotated[PretrainedOptions, Tag("pretrained")],
    Discriminator(_featurize_kind),
]
register_featurizer("tfidf", Tfidf.from_json)
register_featurizer("tokens", Vocabulary.from_json)
