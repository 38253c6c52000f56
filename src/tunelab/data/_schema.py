"""What a run was trained on, as new data must look: ``schema.json`` in the run folder.

``tunelab predict`` and ``Run.predict`` read it to check new data against the training data
(columns, sample shape, image size and channels) and to name the classes, without loading
the training data again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tunelab.data._dataset import Dataset
from tunelab.errors import RunError

__all__ = ["Schema", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Schema:
    """The inputs and outputs of a trained model.

    Attributes:
        kind: ``table`` (named feature columns), ``image`` (``(C, H, W)`` samples),
            ``array`` (numeric samples without column names) or ``text`` (raw texts, in the
            column ``text``; ``in_shape`` is then the fitted featurizer's, in
            ``featurizer.json``).
        task: ``classification`` or ``regression``.
        in_shape: the shape of one sample as the model takes it.
        classes: class names in index order (classification).
        features: the feature columns of a table, in the order the model takes them.
        target: the target column of a table (or None).
        out_features: regression target dimensions (1 for one target).
        resize: images were resized to ``in_shape`` in training (``data.size``), so new
            images are too; otherwise an image of another size is refused.
        text: the column of texts of new data (``text`` kind).
    """

    kind: str
    task: str
    in_shape: tuple[int, ...]
    classes: list[str] | None = None
    features: list[str] | None = None
    target: str | None = None
    out_features: int = 1
    resize: bool = False  # images: resized to in_shape in training (data.size), so again here
    text: str | None = None
    version: int = SCHEMA_VERSION

    @classmethod
    def of(
        cls,
        ds: Dataset,
        *,
        target: str | None = None,
        resize: bool = False,
        text: str | None = None,
    ) -> Schema:
        kind = "image" if ds.is_image else "table" if ds.feature_names else "array"
        if ds.texts is not None:
            kind, text = "text", text or "text"
        return cls(
            kind=kind,
            task=ds.task,
            in_shape=tuple(ds.in_shape),
            classes=list(ds.classes) if ds.classes is not None else None,
            features=list(ds.feature_names) if ds.feature_names and kind == "table" else None,
            target=target,
            out_features=ds.out_features if ds.task == "regression" else 1,
            resize=resize,
            text=text,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"in_shape": list(self.in_shape)}

    @classmethod
    def from_json(cls, data: dict[str, Any], *, path: str = "schema.json") -> Schema:
        if data.get("version", 1) > SCHEMA_VERSION:
            raise RunError(
                f"{path} was written by a newer tunelab (schema version {data['version']}); "
                "upgrade tunelab to predict with this run"
            )
        try:
            return cls(**{**data, "in_shape": tuple(int(s) for s in data["in_shape"])})
        except (KeyError, TypeError) as exc:
            raise RunError(f"{path} is not a tunelab schema ({exc})") from None

    @property
    def samples(self) -> str:
        """``(1, 28, 28)`` or ``4 columns``: what one sample is, for messages."""
        if self.kind == "table" and self.features:
            return f"{len(self.features)} columns"
        if self.kind == "text":
            return f"texts (column `{self.text}`)"
        return str(self.in_shape)
