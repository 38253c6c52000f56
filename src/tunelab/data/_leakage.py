"""Leakage checks at split time: exact duplicate samples across train, validation and test.

A sample whose exact copy sits in the training part makes a validation or test score look
better than the model is. Every sample's features are hashed once (blake2b of the row's bytes,
~0.5 s for 70,000 MNIST images on one core); parts are then compared by hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tunelab.data._dataset import Dataset

__all__ = [
    "PairDuplicates",
    "DuplicateReport",
    "find_duplicates",
    "describe_duplicates",
    "sample_ids",
    "first_copies",
]

_EXAMPLES = 5


@dataclass(frozen=True)
class PairDuplicates:
    """The samples of ``part`` that have an exact copy (same features) in ``other``.

    Attributes:
        part: the evaluated side, e.g. ``"test"`` or ``"fold 2 val"``.
        other: the side the copies are in, e.g. ``"train"``.
        count: how many samples of ``part`` have a copy in ``other``.
        examples: up to 5 ``(index in part, index of a copy in other)`` pairs.
        indices: every such sample of ``part`` (data set indices, sorted).
    """

    part: str
    other: str
    count: int
    examples: tuple[tuple[int, int], ...]
    indices: np.ndarray = field(repr=False, compare=False)

    def to_json(self) -> dict:
        return {
            "part": self.part,
            "other": self.other,
            "count": self.count,
            "examples": [list(e) for e in self.examples],
        }


@dataclass(frozen=True)
class DuplicateReport:
    """Exact duplicates across parts and within the whole data set.

    Attributes:
        pairs: one entry per compared ``(part, other)`` pair.
        groups: groups of two or more identical samples in the whole data set.
        duplicated: samples that belong to such a group.
        conflicts: groups whose identical samples carry different targets.
        conflict_examples: up to 5 ``(i, j)`` index pairs with the same features and
            different targets.
    """

    pairs: tuple[PairDuplicates, ...]
    groups: int
    duplicated: int
    conflicts: int
    conflict_examples: tuple[tuple[int, int], ...]

    @property
    def total_cross(self) -> int:
        """Samples of a test or validation part with a copy in the part compared to it,
        summed over the pairs."""
        return sum(p.count for p in self.pairs)

    def to_json(self) -> dict:
        return {
            "pairs": [p.to_json() for p in self.pairs],
            "total_cross": self.total_cross,
            "groups": self.groups,
            "duplicated": self.duplicated,
            "conflicts": self.conflicts,
            "conflict_examples": [list(e) for e in self.conflict_examples],
        }


def find_duplicates(
    ds: Dataset,
    parts: dict[str, np.ndarray],
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> DuplicateReport:
    """Find the exact duplicates (byte-identical features) between parts of ``ds``.

    Args:
        ds: the data set.
        parts: named index arrays, e.g. ``{"train": ..., "val": ..., "test": ...}``.
        pairs: ``(part, other)`` names to compare: count the samples of ``part`` with a copy
            in ``other``. Default: every pair, the later part of ``parts`` against each
            earlier one (``val``~``train``, ``test``~``train``, ``test``~``val``).

    Example:
        >>> report = find_duplicates(ds, {"train": train_idx, "test": test_idx})  # doctest: +SKIP
        >>> report.pairs[0].count, report.pairs[0].examples                       # doctest: +SKIP
        (3, ((12, 87), (40, 3), (51, 22)))
    """
    names = list(parts)
    if pairs is None:
        pairs = [(b, a) for i, a in enumerate(names) for b in names[i + 1 :]]
    ids = sample_ids(ds)
    found = tuple(
        _pair(ids, name, np.asarray(parts[name]), o, np.asarray(parts[o])) for name, o in pairs
    )

    sizes = np.bincount(ids)
    groups, duplicated = int((sizes > 1).sum()), int(sizes[sizes > 1].sum())
    # conflicts: one feature id with more than one target id
    xy = np.unique(np.stack([ids, _row_ids(ds.y)], axis=1), axis=0)
    conflicting = np.flatnonzero(np.bincount(xy[:, 0]) > 1)
    examples = []
    for g in conflicting[:_EXAMPLES]:
        members = np.flatnonzero(ids == g)
        y = ds.y[members].reshape(len(members), -1)
        j = next(k for k in range(1, len(members)) if not np.array_equal(y[k], y[0]))
        examples.append((int(members[0]), int(members[j])))
    return DuplicateReport(found, groups, duplicated, len(conflicting), tuple(examples))


def sample_ids(ds: Dataset) -> np.ndarray:
    """An integer per sample of ``ds``, equal exactly when two samples are exact copies."""
    digests = ds.digests
    return _row_ids(ds.X) if digests is None else _ids_of(digests)


def first_copies(ds: Dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """Every index, or with ``ds.drop_duplicates`` the first of each group of exact copies,
    and the indices dropped (None when nothing is dropped by design)."""
    if not ds.drop_duplicates:
        return np.arange(len(ds)), None
    _, first = np.unique(sample_ids(ds), return_index=True)
    kept = np.sort(first)
    return kept, np.setdiff1d(np.arange(len(ds)), kept)


def describe_duplicates(record: dict, *, limit: int = 3) -> str:
    """One plain line for people from a report's JSON (as stored in splits.json), or ``""``.

    ``leakage check: 3 test samples have an exact copy in train (e.g. 12~87);
    split.on_duplicates: warn``
    """
    crossing = [p for p in record.get("pairs", []) if p["count"]]
    if not crossing and not record.get("conflicts"):
        return ""
    texts = [_pair_text(p) for p in crossing[:limit]]
    if len(crossing) > limit:
        texts.append(f"{len(crossing) - limit} more pair(s) with copies")
    if record.get("conflicts"):
        n = record["conflicts"]
        e = ", ".join(f"{i}~{j}" for i, j in record["conflict_examples"][:2])
        texts.append(
            f"{n} group{'s' if n > 1 else ''} of identical samples with different targets (e.g. {e})"
        )
    line = "leakage check: " + ", ".join(texts)
    if "on_duplicates" in record:
        line += f"; split.on_duplicates: {record['on_duplicates']}"
    dropped = {k: v for k, v in record.get("dropped", {}).items() if v}
    if dropped:
        line += " (dropped " + ", ".join(f"{v} from {k}" for k, v in dropped.items()) + ")"
    return line


def _pair_text(p: dict) -> str:
    n = p["count"]
    verb = "samples have" if n > 1 else "sample has"
    e = ", ".join(f"{i}~{j}" for i, j in p["examples"][:2])
    return f"{n} {p['part']} {verb} an exact copy in {p['other']} (e.g. {e})"


def _row_ids(a: np.ndarray) -> np.ndarray:
    """An integer per sample, equal exactly when the samples' bytes are equal (128-bit hash)."""
    rows = np.ascontiguousarray(a).reshape(len(a), -1)
    digests = np.array([hashlib.blake2b(r, digest_size=16).digest() for r in rows], dtype="S16")
    return _ids_of(digests)


def _ids_of(digests: np.ndarray) -> np.ndarray:
    """Equal integers for equal 16-byte sample hashes."""
    return np.unique(digests, return_inverse=True)[1].reshape(-1)


def _pair(ids, name, part, other_name, other) -> PairDuplicates:
    hits = part[np.isin(ids[part], ids[other])]
    # a copy in `other` for each of the first few hits: binary search in other's sorted ids
    order = np.argsort(ids[other], kind="stable")
    first = hits[:_EXAMPLES]
    copies = other[order[np.searchsorted(ids[other][order], ids[first])]]
    examples = tuple((int(a), int(b)) for a, b in zip(first, copies, strict=True))
    return PairDuplicates(name, other_name, len(hits), examples, np.sort(hits))
