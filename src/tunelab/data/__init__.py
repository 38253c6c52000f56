"""Data: sources, splits, preprocessing and batched augmentation.

Also importable, as plumbing outside ``__all__`` (used by train, tune and the CLI):
``outer_cv``, ``outer_folds``, ``make_cv`` (nested CV), ``describe_duplicates`` (the leakage
line), ``read_idx``, ``write_idx``, ``MNIST_FILES``, ``MNIST_URL_BASE``, ``load_checksums``;
text featurizers, fitted per training part: ``TfidfOptions``, ``text_column``,
``check_texts``, ``texts_frame``; lazy data sets: ``LazyPart`` (a part read through a DataLoader), ``fit_stats`` (preprocessing
statistics of a part, streamed when lazy); the per-part featurizer hook (``_tabular``):
``fit_part`` (a training part's preprocessing: the featurizer fitted on its rows, or
``fit_stats``), ``features_on``, ``in_shape_of``, ``FEATURIZERS`` and ``register_featurizer``
(a fitted state's kind -> its ``from_json``); for predict: ``NewData``, ``read_new_data``, ``frame_data``, ``frame_features``, ``array_features``, ``write_table``; for ``tunelab init``: ``inspect_data`` (``TableFacts``,
``FolderFacts``); ``TARGET_SCALE_FILE``, ``LOSS_SCALE`` (a run's target scale file, and
which scale its loss is on).
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "Dataset": "_dataset",
    "Task": "_dataset",
    "Lazy": "_dataset",
    "load_dataset": "_sources",
    "BUILTINS": "_sources",
    "BuiltinInfo": "_sources",
    "load_table": "_files",
    "load_npz": "_files",
    "load_image_folder": "_images",
    "load_factory": "_python",
    "text_folder": "_text",
    "load_mnist": "_idx",
    "download_mnist": "_download",
    "Splits": "_splits",
    "Fold": "_splits",
    "make_splits": "_splits",
    "fingerprint": "_splits",
    "find_duplicates": "_leakage",
    "DuplicateReport": "_leakage",
    "PairDuplicates": "_leakage",
    "Schema": "_schema",
    "Standardizer": "_preprocess",
    "fit_standardizer": "_preprocess",
    "TargetScale": "_target",
    "fit_target_scale": "_target",
    "read_target_scale": "_target",
    "TablePreprocess": "_tabular",
    "TableFeaturizer": "_tabular",
    "TableState": "_tabular",
    "Augment": "_augment",
    "random_crop": "_augment",
    "hflip": "_augment",
    "random_affine": "_augment",
    "gaussian_noise": "_augment",
    "random_erase": "_augment",
}
_PLUMBING = {
    "TARGET_SCALE_FILE": "_target",
    "LOSS_SCALE": "_target",
    "LazyPart": "_lazy",
    "fit_stats": "_lazy",
    "fit_part": "_tabular",
    "features_on": "_tabular",
    "in_shape_of": "_tabular",
    "new_rows": "_tabular",
    "FEATURIZERS": "_preprocess",
    "register_featurizer": "_preprocess",
    "outer_cv": "_splits",
    "outer_folds": "_splits",
    "make_cv": "_splits",
    "describe_duplicates": "_leakage",
    "read_idx": "_idx",
    "write_idx": "_idx",
    "MNIST_FILES": "_idx",
    "MNIST_URL_BASE": "_download",
    "load_checksums": "_download",
    "NewData": "_inputs",
    "read_new_data": "_inputs",
    "frame_data": "_inputs",
    "frame_features": "_inputs",
    "array_features": "_inputs",
    "write_table": "_inputs",
    "inspect_data": "_inspect",
    "TfidfOptions": "_featurize",
    "texts_frame": "_featurize",
    "text_column": "_text_table",
    "check_texts": "_text_table",
    "TableFacts": "_inspect",
    "FolderFacts": "_inspect",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)
