"""A metric's vectorised bootstrap form, and the shared per-sample features it is computed from.

A resample is a column of multiplicities ``w`` (how often each sample was drawn). A metric of a
weighted sample is usually a function of a few weighted sums ``sum_i w_i f(i)`` of per-sample
features ``f``, so the bootstrap builds the features once, in one sparse matrix ``F``, and gets
their sums for a block of resamples from one product ``F @ W``: a few multiply-adds per sample and
resample, and nothing sorted per resample.

A metric declares this with :class:`Vectorised`, given to ``register_metric(..., vectorised=...)``:
the features it needs (a shared one by name, or its own :class:`Feature`) and a function from their
resample-weighted sums to one value per resample. The bootstrap builds the union of the features the
requested metrics need, once, and calls each metric's form; a metric without one is computed
resample by resample (same result, slower).

Shared features (name: what a sample adds):

* classification: ``tp`` (1 to its class's column when the argmax is right), ``predicted`` (1 to
  its argmax's column), ``support`` (1 to its true class's column), each of width k;
* regression, of width d (one column per output): ``se`` (squared error), ``ae`` (absolute
  error), ``y`` (target minus the target's mean), ``y2`` (the square of that);
* always: ``total`` (1; its sums are ``(r,)``, the resample's size).

Example (a plug-in's metric, the mean of a per-sample value)::

    def margin(y, score):  # per sample: the true class's probability minus the best other one
        other = np.where(np.eye(score.shape[1], dtype=bool)[y], -np.inf, score).max(axis=1)
        return score[np.arange(len(y)), y] - other

    def mean_margin(sums):  # one value per resample: the weighted mean
        return sums["margin"][:, 0] / sums["total"]

    register_metric(
        "margin",
        lambda y, s: float(np.mean(margin(np.asarray(y), np.asarray(s)))),
        task="classification",
        greater_is_better=True,
        vectorised=Vectorised((Feature("margin", margin),), mean_margin),
    )
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_array

from tunelab.errors import TunelabError, did_you_mean

__all__ = ["Block", "Feature", "Sums", "Vectorised"]

# {feature name: (r, width)} for one block of r resamples; "total" is (r,). A feature given as a
# list of blocks has a list of arrays; a block with a `running` order adds "<name>.running" (for a
# list, a sequence read one at a time).
Sums = dict[str, "np.ndarray | list[np.ndarray]"]


@dataclass(frozen=True)
class Block:
    """What a feature adds for the data at hand: ``width`` columns, and entry ``e`` adds
    ``value[e]`` of sample ``sample[e]`` (``e % n`` when None) to column ``column[e]``.

    ``running`` (optional): samples in an order; ``sums[name + ".running"]`` is then ``(r, m + 1)``,
    the running sum of their weights from 0 (a rank statistic such as ROC-AUC reads it).
    """

    column: np.ndarray
    value: np.ndarray
    width: int
    sample: np.ndarray | None = None
    running: np.ndarray | None = None


BlockFn = Callable[[np.ndarray, np.ndarray], "np.ndarray | Block | list[Block] | None"]


@dataclass(frozen=True)
class Feature:
    """A per-sample feature, summed with each resample's weights.

    Attributes:
        name: The key of its sums (features of the same name are built once: one feature each).
        fn: ``fn(y_true, y_score) -> values`` on the checked data: an array ``(n,)`` (one column),
            ``(n, d)`` (d columns), a :class:`Block`, a list of blocks, or None (absent: the
            form reads ``name not in sums``).
        real: True for real values (stored centred at their mean, so float32 sums stay accurate);
            False for counts, whose float32 sums are exact (multiples of 1/2 below 2**24).
    """

    name: str
    fn: BlockFn
    real: bool = True


@dataclass(frozen=True)
class Vectorised:
    """A metric's vectorised bootstrap form.

    Attributes:
        needs: The features it reads: names of shared features (``tp``, ``predicted``,
            ``support``; ``se``, ``ae``, ``y``, ``y2``; ``total``) or its own :class:`Feature`.
        fn: ``fn(sums) -> (r,)``: the metric on each of r resamples, from ``sums[name]``, the
            resample-weighted sums of each needed feature (``(r, width)``; ``total`` is ``(r,)``).
            It must equal the metric function on the resample with those multiplicities.
    """

    needs: tuple[str | Feature, ...]
    fn: Callable[[Sums], np.ndarray]


def _as_block(values: np.ndarray | Block, n: int) -> Block:
    """A feature function's array shorthand as a :class:`Block`."""
    if isinstance(values, Block):
        return values
    values = np.asarray(values)
    if values.shape == (n,):
        return Block(np.zeros(n, np.int64), values, 1)
    if values.ndim == 2 and len(values) == n:
        d = values.shape[1]  # entry i * d + j: sample i, column j
        return Block(np.tile(np.arange(d), n), values.ravel(), d, np.repeat(np.arange(n), d))
    raise TunelabError(
        f"a feature function must return an array (n,) or (n, d) with n = {n}, a Block, a list "
        f"of blocks or None; got shape {values.shape}. Give one value per sample."
    )


class _Features:
    """Per-sample features in one sparse matrix; :meth:`sums` gives their weighted sums for many
    weightings at once (a sparse-dense product: a few multiply-adds per sample and resample).

    Indicator features (counts; halves for ties) are exact: every sum is a multiple of 1/2 below
    2**24, which float32 holds. A real-valued feature ``v`` is stored centred at the mean of its
    nonzero entries, next to the indicator of those entries:
    ``sum_i w_i v_i = mean(v) * sum_i w_i + sum_i w_i (v_i - mean(v))``, so float32 sums of the
    small centred part err by about 1e-8 of the result instead of 1e-6.
    """

    def __init__(self, n: int, dtype: type[np.floating]) -> None:
        self.n, self.dtype = n, dtype
        self.blocks: dict[str, slice] = {}
        self.means: dict[str, tuple[str, np.ndarray]] = {}  # real block -> (count block, means)
        self.running: dict[str, np.ndarray] = {}  # block -> samples in order
        self.lists: dict[str, list[str]] = {}  # a feature of several blocks -> their keys
        self._entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._width = 0
        self.add_indicator("total", np.zeros(n, np.int64), np.ones(n), 1)

    def add(self, feature: Feature, y: np.ndarray, score: np.ndarray) -> None:
        """Add ``feature``'s blocks for the data ``(y, score)`` (nothing when it returns None)."""
        values = feature.fn(y, score)
        if values is None:
            return
        if isinstance(values, list):
            keys = [f"{feature.name}[{i}]" for i in range(len(values))]
            self.lists[feature.name] = keys
        else:
            keys, values = [feature.name], [values]
        for key, block in zip(keys, (_as_block(v, self.n) for v in values), strict=True):
            add = self.add_real if feature.real else self.add_indicator
            add(key, block.column, block.value, block.width, block.sample)
            if block.running is not None:
                self.running[key] = block.running

    def add_indicator(
        self,
        key: str,
        column: np.ndarray,
        value: np.ndarray,
        width: int,
        sample: np.ndarray | None = None,
    ) -> None:
        """``width`` features: entry e adds ``value[e]`` of sample ``sample[e]`` to feature
        ``column[e]``; ``sample`` is ``e % n`` by default (a sample may have several entries)."""
        if sample is None:
            sample = np.arange(len(column)) % self.n
        self.blocks[key] = slice(self._width, self._width + width)
        self._entries.append((self._width + column, sample, value))
        self._width += width

    def add_real(
        self,
        key: str,
        column: np.ndarray,
        value: np.ndarray,
        width: int,
        sample: np.ndarray | None = None,
    ) -> None:
        """Like :meth:`add_indicator` for real values, stored centred at each feature's mean."""
        count = np.bincount(column, minlength=width)
        means = np.bincount(column, weights=value, minlength=width) / np.maximum(count, 1)
        if width == 1:
            count_key = "total"
        else:
            count_key = f"{key}#count"
            self.add_indicator(count_key, column, np.ones(len(column)), width, sample)
        self.means[key] = (count_key, means)
        self.add_indicator(key, column, value - means[column], width, sample)

    def build(self) -> None:
        feature, sample, value = (np.concatenate(p) for p in zip(*self._entries, strict=True))
        keep = value != 0
        self.matrix = csr_array(
            (value[keep].astype(self.dtype), (feature[keep], sample[keep])),
            shape=(self._width, self.n),
        )
        del self._entries

    def sums(self, weights: np.ndarray) -> Sums:
        """``{key: (r, width)}``: weighted sums (float64) of each block, ``total`` among them."""
        sums = np.asarray(self.matrix @ weights).T.astype(np.float64)
        out: Sums = {key: sums[:, where] for key, where in self.blocks.items()}
        for key, (count_key, means) in self.means.items():
            out[key] = out[key] + out[count_key] * means
        out["total"] = out["total"][:, 0]
        listed = set()
        for name, keys in self.lists.items():
            out[name] = [out.pop(key) for key in keys]
            orders = [self.running[key] for key in keys if key in self.running]
            if orders:
                out[f"{name}.running"] = _RunningSums(weights, orders)
            listed.update(keys)
        for key, order in self.running.items():
            if key not in listed:
                out[f"{key}.running"] = _running(weights, order)
        return out


def _running(weights: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``(r, m + 1)``: the running sums, from 0, of the weights of the samples ``order``."""
    cumulative = np.zeros((len(order) + 1, weights.shape[1]))
    np.cumsum(np.take(weights, order, axis=0), axis=0, out=cumulative[1:])
    return cumulative.T


class _RunningSums(Sequence):
    """The running sums of several blocks' orders, each computed when it is read (so one
    ``(r, m + 1)`` array at a time is held, as a loop over the blocks reads them)."""

    def __init__(self, weights: np.ndarray, orders: list[np.ndarray]) -> None:
        self.weights, self.orders = weights, orders

    def __len__(self) -> int:
        return len(self.orders)

    def __getitem__(self, index: int) -> np.ndarray:
        return _running(self.weights, self.orders[index])


def build_features(
    features: Sequence[Feature], y: np.ndarray, score: np.ndarray, dtype: type[np.floating]
) -> _Features:
    """The features (each built once) of the data ``(y, score)``, ready for :meth:`_Features.sums`."""
    built = _Features(len(y), dtype)
    for feature in features:
        built.add(feature, y, score)
    built.build()
    return built


def union(forms: Sequence[Vectorised], task: str) -> list[Feature]:
    """The features the ``forms`` need, each once (by name), in the order first needed."""
    out: dict[str, Feature] = {}
    for form in forms:
        for need in form.needs:
            feature = resolve(need, task)
            if feature is None:
                continue
            if out.setdefault(feature.name, feature) != feature:
                raise TunelabError(
                    f"two different features are called `{feature.name}`; expected one feature "
                    f"per name. Give a metric's own Feature a name of its own."
                )
    return list(out.values())


def resolve(need: str | Feature, task: str) -> Feature | None:
    """A form's need as a Feature (None for ``total``, which is always there), or a TunelabError."""
    if isinstance(need, Feature):
        if need.name == "total" or need.name in SHARED[task]:
            raise TunelabError(
                f"a metric's own Feature is called `{need.name}`, the name of a shared feature; "
                f"expected a name of its own. Name the shared one as a string instead."
            )
        return need
    if need == "total":
        return None
    if isinstance(need, str) and need in SHARED[task]:
        return SHARED[task][need]
    known = ["total", *SHARED[task]]
    raise TunelabError(
        f"a vectorised form needs an unknown {task} feature {need!r}"
        f"{did_you_mean(str(need), known)}; expected a Feature or one of: {', '.join(known)}."
    )


# --- the shared features -------------------------------------------------------------------------


def _tp(y: np.ndarray, score: np.ndarray) -> Block:
    return Block(y, (score.argmax(axis=1) == y).astype(np.float64), score.shape[1])


def _predicted(y: np.ndarray, score: np.ndarray) -> Block:
    return Block(score.argmax(axis=1), np.ones(len(y)), score.shape[1])


def _support(y: np.ndarray, score: np.ndarray) -> Block:
    return Block(y, np.ones(len(y)), score.shape[1])


def _centred(y: np.ndarray) -> np.ndarray:
    return y - y.mean(axis=0)


SHARED: dict[str, dict[str, Feature]] = {
    "classification": {
        "tp": Feature("tp", _tp, real=False),
        "predicted": Feature("predicted", _predicted, real=False),
        "support": Feature("support", _support, real=False),
    },
    "regression": {
        "se": Feature("se", lambda y, pred: (y - pred) ** 2),
        "ae": Feature("ae", lambda y, pred: np.abs(y - pred)),
        "y": Feature("y", lambda y, _: _centred(y)),
        "y2": Feature("y2", lambda y, _: _centred(y) ** 2),
    },
}
