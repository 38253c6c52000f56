"""Data: sources, splits, preprocessing and batched augmentation.

Also importable, as plumbing outside ``__all__`` (used by train, tune and the CLI):
``outer_cv``, ``outer_folds``, ``make_cv`` (nested CV), ``describe_duplicates`` (the leakage
line), ``read_idx``, ``write_idx``, ``MNIST_FILES``, ``MNIST_URL_BASE``, ``load_checksums``;
text featurizers, fitted per training part: ``TfidfOptions``, ``fit_featurizer``,
``featurizer_from_json``, ``FEATURIZER_FILE``, ``text_column``, ``check_texts``; lazy data sets: ``LazyPart`` (a part read through a DataLoader), ``fit_stats`` (preprocessing
statistics of a part, streamed when lazy); for predict: ``NewData``, ``read_new_data``, ``frame_data``, ``frame_features``, ``array_features``, ``write_table``; for ``tunelab init``: ``inspect_data`` (``TableFacts``,
``FolderFacts``).
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
    "Augment": "_augment",
    "random_crop": "_augment",
    "hflip": "_augment",
    "random_affine": "_augment",
    "gaussian_noise": "_augment",
    "random_erase": "_augment",
}
_PLUMBING = {
    "LazyPart": "_lazy",
    "fit_stats": "_lazy",
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
    "fit_featurizer": "_featurize",
    "featurizer_from_json": "_featurize",
    "FEATURIZER_FILE": "_featurize",
    "text_column": "_text_table",
    "check_texts": "_text_sources",
    "TableFacts": "_inspect",
    "FolderFacts": "_inspect",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS | _PLUMBING)
