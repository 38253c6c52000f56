"""Tables with categories and gaps, and the per-part featurizer hook they use.

The hook: a :class:`~tunelab.data.Dataset` whose samples need fitting before they are numbers
carries ``table`` (its raw feature columns, a DataFrame) and ``featurizer`` (an object with
``fit(rows) -> state``). :func:`fit_part` is called where each training part's preprocessing
is fitted (every CV fold, the refit, a packed fold): it fits the featurizer on that part's
rows alone, transforms every row with the fitted state into a float32 matrix (its width may
differ from part to part; a state with ``sequences = True`` makes int64 token ids instead,
padded with 0 at the end, never scaled), and returns the part's :class:`Standardizer` with the state on it.
A fitted state has ``kind``, ``width``, ``names`` (its output columns), ``scaled`` (a bool per
output column: standardised under ``scale: auto``), ``transform(table, where=...) -> (X,
unknown)`` (``unknown``: per column, values the fit never saw) and ``to_json()``; its kind's
``from_json`` is registered with :func:`register_featurizer`. ``preprocess.json`` keeps the
state as JSON, never a pickle.

The table featurizer: numeric columns imputed (median by default), string columns imputed
with their most frequent value and one-hot encoded (a category the training part never had
becomes all zeros), optional missing-indicator columns. scikit-learn's ``ColumnTransformer``,
``SimpleImputer``, ``MissingIndicator`` and ``OneHotEncoder`` fit it
(:meth:`TableFeaturizer.transformer`); the state keeps what they learnt (fill values,
categories, the columns with indicators) and applies it with numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tunelab.data._dataset import Dataset
from tunelab.data._preprocess import Standardizer, fit_standardizer, register_featurizer
from tunelab.errors import DataError, RunError
from tunelab.plugins import Options

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = [
    "TablePreprocess",
    "TableFeaturizer",
    "TableState",
    "table_options",
    "scale_mode",
    "fit_part",
    "features_on",
    "in_shape_of",
    "new_rows",
]


class TablePreprocess(Options):
    """``data.preprocess`` in full: what is fitted on each training part of a table."""

    categorical: Literal["onehot", "none"] = "onehot"
    """string columns: one-hot (onehot), or refused (none)"""
    impute: Literal["auto", "median", "mean", "most_frequent", "none"] = "auto"
    """gaps: auto is median for numbers and the most frequent value for categories; none
    refuses them"""
    missing_indicator: bool = False
    """one more 0/1 column per column that had gaps in the training part"""
    scale: Literal["auto", "standardize", "none"] = "auto"
    """auto: standardise numeric columns (one-hot and indicator columns stay 0/1);
    standardize: every column; none: no scaling"""


def table_options(preprocess: str | dict | TablePreprocess) -> TablePreprocess:
    """The full form of ``data.preprocess`` (from a mapping of it too); a plain
    ``auto|standardize|none`` is its scale."""
    if isinstance(preprocess, TablePreprocess):
        return preprocess
    if isinstance(preprocess, dict):
        return TablePreprocess(**preprocess)
    return TablePreprocess(scale=preprocess)


def scale_mode(preprocess: str | TablePreprocess) -> str:
    """``auto``, ``standardize`` or ``none``: the scaling part of ``data.preprocess``."""
    return preprocess.scale if isinstance(preprocess, TablePreprocess) else preprocess


# ---------------------------------------------------------------------------------------------
# the hook


def fit_part(ds: Dataset, idx: np.ndarray, preprocess: str | TablePreprocess) -> Standardizer:
    """The preprocessing of the training part ``idx``, fitted on its rows alone."""
    from tunelab.data._lazy import fit_stats

    mode = scale_mode(preprocess)
    if ds.featurizer is None:
        return fit_stats(ds, idx, mode)
    state = ds.featurizer.fit(ds.table.iloc[np.asarray(idx)])
    X, _ = state.transform(ds.table, where=ds.name)
    if getattr(state, "sequences", False):  # token ids: codes, never scaled (and stay int64)
        stats = Standardizer("none", np.zeros(1, np.float32), np.ones(1, np.float32))
        stats.featurizer, stats.inputs = state, X
        return stats
    stats = fit_standardizer(X[idx], "none" if mode == "none" else "standardize")
    if mode == "auto":  # only the columns the featurizer marks (numbers, not 0/1 codes)
        kept = ~np.asarray(state.scaled, bool)
        stats.mean[kept], stats.std[kept] = 0.0, 1.0
    stats.featurizer, stats.inputs = state, X
    return stats


def features_on(ds: Dataset, stats: Standardizer, device: torch.device) -> torch.Tensor:
    """Every row of ``ds`` as the part's fitted featurizer makes it, on ``device`` (kept)."""
    import torch

    if stats.featurizer is None:
        raise RunError(
            f"{ds.name}: its samples are featurized per training part, but no fitted "
            "featurizer was given with this part's preprocessing"
        )
    key = str(device)
    if key not in stats.on_device:
        if stats.inputs is None:
            stats.inputs, _ = stats.featurizer.transform(ds.table, where=ds.name)
        stats.on_device[key] = torch.as_tensor(stats.inputs, device=device)
    return stats.on_device[key]


def in_shape_of(stats: Standardizer, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one sample as the model takes it: the featurizer's width, if any."""
    return (int(stats.featurizer.width),) if stats.featurizer is not None else tuple(in_shape)


def new_rows(state: Any, table: pd.DataFrame, where: str) -> np.ndarray:
    """New rows (to predict on) as a run's fitted ``state`` makes them; the values its
    training part never had counted in one warning."""
    import warnings

    X, unknown = state.transform(table, where=where)
    if unknown:
        counts = ", ".join(f"`{c}` ({n} row{'s' if n > 1 else ''})" for c, n in unknown.items())
        warnings.warn(
            f"{where}: categories the training part never had, encoded as all zeros: {counts}",
            UserWarning,
            stacklevel=2,
        )
    return X


# ---------------------------------------------------------------------------------------------
# the table featurizer


def as_categories(column: pd.Series) -> np.ndarray:
    """A column's values as strings (an object array), gaps as NaN: one form for fit and
    predict, whatever dtype pandas read the column with."""
    import pandas as pd

    values = column.to_numpy(dtype=object)
    return np.array([np.nan if pd.isna(v) else str(v) for v in values], dtype=object)


def numbers_of(column: pd.Series, *, where: str) -> np.ndarray:
    """A numeric column as float64, gaps NaN; text or infinities named."""
    import pandas as pd

    try:
        values = pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError):
        raise DataError(
            f"{where}: column `{column.name}` is not numeric, as it was in training"
        ) from None
    if np.isinf(values).any():
        rows = np.flatnonzero(np.isinf(values))
        raise DataError(
            f"{where}: infinite value in column `{column.name}` at data row {rows[0] + 1} "
            f"({len(rows)} in all)"
        )
    return values


@dataclass
class TableFeaturizer:
    """A table's featurizer before fitting: its options and which columns are which (by the
    file's dtypes: what a column is, not a statistic of any part)."""

    options: TablePreprocess
    numeric: list[str]
    categorical: list[str]
    kind: str = "table"

    def transformer(self) -> Any:
        """scikit-learn's ColumnTransformer for these columns and options (not fitted)."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import MissingIndicator, SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        impute, parts = self.options.impute, []
        if self.numeric:
            strategy = "median" if impute == "auto" else impute
            parts.append(
                (
                    "num",
                    "passthrough"
                    if impute == "none"
                    else SimpleImputer(strategy=strategy, keep_empty_features=True),
                    self.numeric,
                )
            )
        if self.categorical:
            onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
            fill = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
            steps = [] if impute == "none" else [fill]
            parts.append(("cat", make_pipeline(*steps, onehot), self.categorical))
        if self.options.missing_indicator:
            for name, cols in (("num_missing", self.numeric), ("cat_missing", self.categorical)):
                if cols:
                    parts.append((name, MissingIndicator(features="missing-only"), cols))
        return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)

    def frame(self, table: pd.DataFrame, *, where: str) -> pd.DataFrame:
        """The columns in the form the transformer takes: numbers as float64, categories as
        strings, gaps NaN."""
        import pandas as pd

        data = {c: numbers_of(table[c], where=where) for c in self.numeric}
        data |= {c: as_categories(table[c]) for c in self.categorical}
        return pd.DataFrame(data, index=table.index)[self.numeric + self.categorical]

    def fit(self, rows: pd.DataFrame) -> TableState:
        """Fit on the training part's rows alone; the fitted values as a :class:`TableState`."""
        import warnings

        ct = self.transformer()
        with warnings.catch_warnings():  # a column empty in this part: kept, filled with 0
            warnings.simplefilter("ignore", UserWarning)
            ct.fit(self.frame(rows, where="the training part"))
        fill_num = fill_cat = None
        if self.numeric and self.options.impute != "none":
            fill_num = [float(v) for v in ct.named_transformers_["num"].statistics_]
        categories = []
        if self.categorical:
            pipe = ct.named_transformers_["cat"]
            if self.options.impute != "none":
                fill_cat = [None if _gap(v) else str(v) for v in pipe[0].statistics_]
            categories = [[str(c) for c in cats if not _gap(c)] for cats in pipe[-1].categories_]
        missing = []
        for name, cols in (("num_missing", self.numeric), ("cat_missing", self.categorical)):
            if name in ct.named_transformers_:
                missing += [cols[j] for j in ct.named_transformers_[name].features_]
        return TableState(
            numeric=list(self.numeric),
            categorical=list(self.categorical),
            fill_numeric=fill_num,
            fill_categorical=fill_cat,
            categories=categories,
            missing=missing,
        )


def _gap(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


@dataclass
class TableState:
    """What the table featurizer learnt from one training part; applied with numpy.

    Output columns in order: the numeric columns (gaps filled), one 0/1 column per category
    of each categorical column (``column=category``), then one ``column_missing`` per column
    that had gaps in the training part (with ``missing_indicator``)."""

    numeric: list[str]
    categorical: list[str]
    fill_numeric: list[float] | None
    fill_categorical: list[str | None] | None
    categories: list[list[str]]
    missing: list[str]
    kind: str = "table"

    @property
    def names(self) -> list[str]:
        onehot = [
            f"{c}={v}"
            for c, cats in zip(self.categorical, self.categories, strict=True)
            for v in cats
        ]
        return [*self.numeric, *onehot, *(f"{c}_missing" for c in self.missing)]

    @property
    def width(self) -> int:
        return len(self.names)

    @property
    def scaled(self) -> list[bool]:
        return [True] * len(self.numeric) + [False] * (self.width - len(self.numeric))

    def transform(self, table: pd.DataFrame, *, where: str) -> tuple[np.ndarray, dict[str, int]]:
        """``(X, unknown)``: float32 features of every row, and per categorical column the
        number of values the training part never had (encoded as all zeros)."""
        n = len(table)
        blocks, unknown = [], {}
        for j, c in enumerate(self.numeric):
            values = numbers_of(table[c], where=where)
            gaps = np.isnan(values)
            if gaps.any():
                if self.fill_numeric is None:
                    raise DataError(_gaps_message(where, c, gaps))
                values = np.where(gaps, self.fill_numeric[j], values)
            blocks.append(values[:, None])
        for j, c in enumerate(self.categorical):
            values = as_categories(table[c])
            gaps = np.array([_gap(v) for v in values], bool)
            fill = self.fill_categorical[j] if self.fill_categorical is not None else None
            if gaps.any() and fill is None and self.fill_categorical is None:
                raise DataError(_gaps_message(where, c, gaps))
            values = np.where(gaps, fill, values)
            cats = np.asarray(self.categories[j], dtype=object)
            onehot = values[:, None] == cats[None, :] if len(cats) else np.zeros((n, 0), bool)
            seen = onehot.any(axis=1) | (gaps & (fill is None))
            if (~seen).any():
                unknown[c] = int((~seen).sum())
            blocks.append(onehot.astype(np.float64))
        for c in self.missing:
            blocks.append(table[c].isna().to_numpy()[:, None].astype(np.float64))
        X = np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))
        return np.ascontiguousarray(X, dtype=np.float32), unknown

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "columns": {"numeric": self.numeric, "categorical": self.categorical},
            "fill": {"numeric": self.fill_numeric, "categorical": self.fill_categorical},
            "categories": self.categories,
            "missing_indicator": self.missing,
            "names": self.names,
        }

    @classmethod
    def from_json(cls, data: dict) -> TableState:
        try:
            return cls(
                numeric=list(data["columns"]["numeric"]),
                categorical=list(data["columns"]["categorical"]),
                fill_numeric=data["fill"]["numeric"],
                fill_categorical=data["fill"]["categorical"],
                categories=[list(c) for c in data["categories"]],
                missing=list(data["missing_indicator"]),
            )
        except (KeyError, TypeError) as exc:
            raise RunError(f"preprocess.json: not a table featurizer state ({exc!r})") from None


def _gaps_message(where: str, column: str, gaps: np.ndarray) -> str:
    rows = np.flatnonzero(gaps)
    return (
        f"{where}: missing value in column `{column}` at data row {rows[0] + 1} "
        f"({len(rows)} in all), and data.preprocess.impute is none"
    )


register_featurizer("table", TableState.from_json)
