"""Splits: the test part is carved out first and sealed; then holdout or CV folds.

Every part is a sorted array of indices into the Dataset, with a content fingerprint so that a
later reader can tell whether the data behind the indices changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from tunelab.data._dataset import Dataset
from tunelab.data._leakage import describe_duplicates, find_duplicates, first_copies
from tunelab.errors import DataError
from tunelab.spec import CVSpec, SplitSpec

__all__ = ["Splits", "Fold", "make_splits", "fingerprint", "make_cv", "outer_cv", "outer_folds"]


@dataclass
class Fold:
    train: np.ndarray
    val: np.ndarray


@dataclass
class Splits:
    """Indices of the sealed test part and of each (train, val) fold of the rest."""

    kind: str
    test: np.ndarray
    folds: list[Fold]
    seed: int
    fingerprints: dict[str, str] = field(default_factory=dict)
    duplicates: dict | None = None  # the leakage check's record (see `find_duplicates`)

    @property
    def dev(self) -> np.ndarray:
        """Every index that is not in the test part (train + val)."""
        return np.unique(np.concatenate([np.concatenate([f.train, f.val]) for f in self.folds]))

    def to_json(self, ds: Dataset) -> dict:
        names = ds.classes or [str(c) for c in range(ds.num_classes or 0)]

        def part(idx: np.ndarray) -> dict:
            entry = {
                "size": int(len(idx)),
                "fingerprint": fingerprint(ds, idx),
                "indices": idx.tolist(),
            }
            if ds.task == "classification":  # the class balance, for reports
                counts = np.bincount(ds.y[idx], minlength=len(names))
                entry["classes"] = {str(names[c]): int(counts[c]) for c in range(len(names))}
            return entry

        return {
            "kind": self.kind,
            "seed": self.seed,
            "n": len(ds),
            "dataset": ds.name,
            "test": part(self.test),
            "folds": [{"train": part(f.train), "val": part(f.val)} for f in self.folds],
            "duplicates": self.duplicates,
        }

    @classmethod
    def from_json(cls, data: dict, ds: Dataset | None = None) -> Splits:
        """Rebuild from splits.json; with ``ds``, check every fingerprint still matches."""
        test = np.asarray(data["test"]["indices"], dtype=np.int64)
        folds = [
            Fold(
                np.asarray(f["train"]["indices"], np.int64),
                np.asarray(f["val"]["indices"], np.int64),
            )
            for f in data["folds"]
        ]
        splits = cls(
            kind=data["kind"],
            test=test,
            folds=folds,
            seed=data["seed"],
            duplicates=data.get("duplicates"),
        )
        if ds is not None:
            if data.get("n") != len(ds):
                raise DataError(
                    f"the data set now has {len(ds)} samples but the run was split over "
                    f"{data.get('n')}; the data behind this run changed"
                )
            parts = [("test", data["test"], test)] + [
                (f"fold {i} {name}", f[name], getattr(folds[i], name))
                for i, f in enumerate(data["folds"])
                for name in ("train", "val")
            ]
            for label, stored, idx in parts:
                if stored["fingerprint"] != fingerprint(ds, idx):
                    raise DataError(
                        f"the {label} part's content fingerprint no longer matches splits.json "
                        f"(stored {stored['fingerprint']}, now {fingerprint(ds, idx)}): "
                        "the data behind this run changed"
                    )
        return splits


def fingerprint(ds: Dataset, idx: np.ndarray) -> str:
    """sha256 of the features and targets at ``idx`` (in index order), first 16 hex digits;
    for a lazy data set, of each sample's hash (computed when its samples were streamed)."""
    h = hashlib.sha256()
    digests = ds.digests
    features = ds.X[idx] if digests is None else digests[idx]
    h.update(np.ascontiguousarray(features).tobytes())
    h.update(np.ascontiguousarray(ds.y[idx]).tobytes())
    return h.hexdigest()[:16]


def make_splits(
    ds: Dataset, spec: SplitSpec, *, seed: int, test: np.ndarray | None = None
) -> Splits:
    """Carve out the test part, then split the rest into holdout or CV folds.

    ``test``: a test part given by the caller (an outer fold of nested CV, see
    :func:`outer_folds`) instead of the one ``spec.test`` would carve out.
    Exact duplicates across the parts are checked at the end and handled as
    ``spec.on_duplicates`` says (see :func:`check_duplicates`).
    """
    seed = spec.seed if spec.seed is not None else seed
    all_idx, removed = first_copies(ds)
    n = len(all_idx)
    stratify = ds.task == "classification" if spec.stratify is None else spec.stratify
    grouped = spec.cv is not None and spec.cv.kind == "group"
    if grouped and ds.groups is None:
        raise DataError("split.cv.kind is group but the data set has no group labels")
    if spec.cv is not None and spec.cv.kind != "loo":  # before the test part: the plain reason
        if test is not None:
            n_test = len(test)
        elif spec.test == "source":
            n_test = len(ds.source_test) if ds.source_test is not None else 0
        else:
            n_test = int(np.ceil(spec.test * n)) if spec.test else 0
        if n - n_test < spec.cv.folds:
            raise DataError(_too_few_for_folds(ds, spec.cv.folds, n_test, spec.test))

    # the test part: first, sealed
    if test is not None:
        test = np.sort(np.asarray(test, np.int64))
        dev = np.setdiff1d(all_idx, test)
    elif ds.test_is_sealed and spec.test != "source":
        raise DataError(
            f"{ds.name} comes with its own test part (the factory returned (train, test)), "
            f"so it is the sealed test: set split.test: source (it is {spec.test})"
        )
    elif spec.test == "source":
        if ds.source_test is None:
            raise DataError(f"split.test is `source` but {ds.name} has no test part of its own")
        test = np.sort(ds.source_test.astype(np.int64))
        dev = np.setdiff1d(all_idx, test)
    elif spec.test > 0:
        dev, test = _holdout(ds, all_idx, spec.test, seed, stratify, grouped, "split.test")
    else:
        dev, test = all_idx, np.empty(0, np.int64)
    if removed is not None:
        test = np.setdiff1d(test, removed)

    # then validation: one holdout fold or k folds
    if spec.cv is None:
        train, val = _holdout(ds, dev, spec.val, seed + 1, stratify, False, "split.val")
        splits = Splits("holdout", test, [Fold(train, val)], seed)
    else:
        folds = [
            Fold(np.sort(dev[tr]), np.sort(dev[va])) for tr, va in _cv_folds(ds, dev, spec.cv, seed)
        ]
        splits = Splits(_cv_kind(spec.cv, ds), test, folds, seed)
    splits = check_duplicates(ds, splits, spec.on_duplicates)
    if removed is not None:
        splits.duplicates["before_split"] = {
            "dropped": len(removed),
            "indices": removed.tolist(),
            "why": "exact copies of an earlier sample (all but the first of each group)",
        }
    return splits


def check_duplicates(ds: Dataset, splits: Splits, on_duplicates: str) -> Splits:
    """The leakage check: exact copies of a training sample in an evaluation part.

    Compared: each fold's val against its train, and the test part against all non-test
    samples (holdout: against train and val apart). ``on_duplicates``: ``warn`` records
    them in ``splits.duplicates`` (the caller prints), ``error`` raises :class:`DataError`,
    ``drop`` removes those samples from the validation and test parts and records how many.
    """
    holdout = splits.kind == "holdout"
    has_test = len(splits.test) > 0
    if holdout:
        parts = {"train": splits.folds[0].train, "val": splits.folds[0].val}
        pairs = [("val", "train")]
        pairs += [("test", "train"), ("test", "val")] if has_test else []
    else:
        parts = {"non-test": splits.dev}
        pairs = [("test", "non-test")] if has_test else []
        for k, fold in enumerate(splits.folds):
            parts |= {f"fold {k + 1} train": fold.train, f"fold {k + 1} val": fold.val}
            pairs.append((f"fold {k + 1} val", f"fold {k + 1} train"))
    report = find_duplicates(ds, parts | {"test": splits.test}, pairs=pairs)
    record = report.to_json() | {"on_duplicates": on_duplicates}
    if on_duplicates == "error" and report.total_cross:
        raise DataError(
            f"{describe_duplicates({'pairs': record['pairs']}, limit=5)}; "
            f"{report.total_cross} validation or test sample(s) in all are exact copies of a "
            "sample they are compared with, so their scores would not be honest. Set "
            "split.on_duplicates: drop to remove those copies from the validation and test "
            "parts, or remove the duplicate rows from the data"
        )
    if on_duplicates == "drop":
        copies: dict[str, np.ndarray] = {}  # per evaluation part, its samples to drop
        for pair in report.pairs:
            copies[pair.part] = np.union1d(copies.get(pair.part, pair.indices), pair.indices)
        folds = []
        for k, fold in enumerate(splits.folds):
            name = "val" if holdout else f"fold {k + 1} val"
            val = np.setdiff1d(fold.val, copies[name])
            if len(val) == 0:
                raise DataError(
                    f"every sample of the {name} part has an exact copy in its training part, "
                    "so split.on_duplicates: drop would leave it empty; remove the duplicate "
                    "rows from the data, or keep them with split.on_duplicates: warn"
                )
            folds.append(Fold(fold.train, val))
        test = np.setdiff1d(splits.test, copies.get("test", []))
        splits = Splits(splits.kind, test, folds, splits.seed, splits.fingerprints)
        record["dropped"] = {name: len(idx) for name, idx in copies.items()}
    splits.duplicates = record
    return splits


def _holdout(ds, idx, fraction, seed, stratify, grouped, what):
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    n_part = int(np.ceil(fraction * len(idx)))
    if n_part < 1 or len(idx) - n_part < 1:
        raise DataError(
            f"{what}={fraction} leaves no sample on one side: the part has {len(idx)} samples. "
            f"Use a larger data set or another fraction"
        )
    if grouped:
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        keep, out = next(splitter.split(idx, groups=ds.groups[idx]))
        return np.sort(idx[keep]), np.sort(idx[out])
    labels = ds.y[idx] if stratify else None
    try:
        keep, out = train_test_split(idx, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as exc:
        counts = np.unique(ds.y[idx], return_counts=True)[1] if stratify else None
        rare = (
            f" (smallest class has {counts[counts > 0].min()} sample(s))"
            if counts is not None
            else ""
        )
        raise DataError(
            f"cannot make a stratified {what} of {fraction} from {len(idx)} samples{rare}: {exc}. "
            "Set split.stratify: false, or a fraction that leaves every class on both sides"
        ) from None
    return np.sort(keep), np.sort(out)


def _cv_kind(cv: CVSpec, ds: Dataset) -> str:
    if cv.kind == "auto":
        return "stratified" if ds.task == "classification" else "kfold"
    return cv.kind


def outer_cv(spec: SplitSpec, ds: Dataset, *, folds: int) -> tuple[CVSpec, str | None]:
    """The outer splitter of nested CV: the same kind as the inner folds of ``spec``.

    Returns the outer CV spec (``folds`` folds, its kind resolved: never ``auto``) and, where
    its kind differs from the inner one, a plain sentence why. ``group`` stays group (no group
    is on both sides of an outer fold); ``stratified`` and ``kfold`` stay; ``auto`` is
    stratified for classification, k-fold otherwise, as inside. Leave-one-out cannot make
    ``folds`` outer folds and a repeated outer k-fold would test each sample several times,
    so both take the k-fold of ``auto`` (stratified for classification) outside while the
    inner folds stay as asked. Holdout validation: stratified k-fold for classification
    (``split.stratify`` is honoured), plain k-fold otherwise.
    """
    cv = spec.cv
    if cv is None:
        stratify = ds.task == "classification" if spec.stratify is None else spec.stratify
        kind = "stratified" if stratify and ds.task == "classification" else "kfold"
        return CVSpec(kind=kind, folds=folds), None
    if cv.kind in ("loo", "repeated"):
        kind = _cv_kind(CVSpec(kind="auto"), ds)
        why = (
            f"leave-one-out cannot make {folds} outer folds"
            if cv.kind == "loo"
            else "a repeated outer k-fold would test each sample several times"
        )
        return CVSpec(kind=kind, folds=folds, shuffle=cv.shuffle), (
            f"split.cv.kind is {cv.kind}: the outer folds are {folds}-fold {kind} ({why}); "
            f"the inner folds stay {cv.kind}"
        )
    return CVSpec(kind=_cv_kind(cv, ds), folds=folds, shuffle=cv.shuffle), None


def outer_folds(
    ds: Dataset, spec: SplitSpec, *, folds: int, seed: int
) -> tuple[str, list[np.ndarray], str | None]:
    """The outer test parts of nested CV, made by the splitter :func:`outer_cv` chooses.

    Returns the outer kind (``group``, ``stratified``, ``kfold``), ``folds`` sorted, disjoint
    index arrays that together cover the data set, and the note of :func:`outer_cv`. The
    split seed is ``spec.seed`` when set, else ``seed``, as in :func:`make_splits`.
    """
    seed = spec.seed if spec.seed is not None else seed
    cv, note = outer_cv(spec, ds, folds=folds)
    if cv.kind == "group" and ds.groups is None:
        raise DataError("split.cv.kind is group but the data set has no group labels")
    parts = _cv_folds(
        ds, np.arange(len(ds)), cv, seed, what="--nested (outer folds)", where="the data set"
    )
    return cv.kind, [np.sort(test) for _, test in parts], note


def make_cv(cv: CVSpec, ds: Dataset, *, seed: int):
    """The scikit-learn splitter for a CV spec (``auto`` is stratified for classification)."""
    from sklearn import model_selection as ms

    kind = _cv_kind(cv, ds)
    rs = seed if cv.shuffle else None
    if kind == "kfold":
        return ms.KFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    if kind == "stratified":
        return ms.StratifiedKFold(cv.folds, shuffle=cv.shuffle, random_state=rs)
    if kind == "group":
        return ms.GroupKFold(cv.folds)
    if kind == "loo":
        return ms.LeaveOneOut()
    if ds.task == "classification":
        return ms.RepeatedStratifiedKFold(
            n_splits=cv.folds, n_repeats=cv.repeats, random_state=seed
        )
    return ms.RepeatedKFold(n_splits=cv.folds, n_repeats=cv.repeats, random_state=seed)


def _too_few_for_folds(
    ds: Dataset, folds: int, n_test: int, test, what: str = "split.cv.folds"
) -> str:
    """``3 rows cannot make 5 folds: ...`` and what to change."""
    n, unit = len(ds), "images" if ds.is_image else "rows"
    left = n - n_test
    taken = (
        f" ({n_test} of the {n} are the test part, split.test: {test})" if n_test and test else ""
    )
    fixes = [f"at most {left} folds", "`split.cv: loo`"] if left >= 2 else []
    fixes += ["a smaller split.test"] if n_test else []
    fixes.append(f"more {unit}")
    return (
        f"{n} {unit} cannot make {folds} folds: {what} is {folds} but the non-test part "
        f"has only {left} samples{taken}, and every fold needs at least one. Use "
        + (", ".join(fixes[:-1]) + " or " if len(fixes) > 1 else "")
        + fixes[-1]
    )


def _cv_folds(
    ds: Dataset,
    dev: np.ndarray,
    cv: CVSpec,
    seed: int,
    what: str = "split.cv.folds",
    where: str = "the non-test part",
):
    """(train, val) positions in ``dev`` for each fold. ``what`` names the option that set the
    fold count and ``where`` the part ``dev`` is, for the messages."""
    kind = _cv_kind(cv, ds)
    if kind != "loo" and len(dev) < cv.folds:
        raise DataError(_too_few_for_folds(ds, cv.folds, len(ds) - len(dev), None, what))
    if kind == "group":
        n_groups = len(np.unique(ds.groups[dev]))
        if n_groups < cv.folds:
            raise DataError(f"{what} is {cv.folds} but {where} has only {n_groups} groups")
    if kind in ("stratified", "repeated") and ds.task == "classification":
        counts = np.bincount(ds.y[dev])
        smallest = counts[counts > 0].min()
        if smallest < cv.folds:
            raise DataError(
                f"stratified {cv.folds}-fold CV needs at least {cv.folds} samples of every class; "
                f"the smallest class in the non-test part has {smallest}. Use fewer folds "
                f"({what}) or split.cv.kind: kfold"
            )
    splitter = make_cv(cv, ds, seed=seed)
    groups = ds.groups[dev] if kind == "group" else None  # others would warn they ignore it
    return list(splitter.split(np.zeros(len(dev)), ds.y[dev], groups))
