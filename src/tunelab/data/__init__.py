"""Data: sources, splits, preprocessing and batched augmentation."""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "Dataset": "_dataset",
    "Task": "_dataset",
    "load_dataset": "_sources",
    "BUILTINS": "_sources",
    "BuiltinInfo": "_sources",
    "Splits": "_splits",
    "Fold": "_splits",
    "make_splits": "_splits",
    "outer_cv": "_splits",
    "outer_folds": "_splits",
    "make_cv": "_splits",
    "fingerprint": "_splits",
    "find_duplicates": "_leakage",
    "DuplicateReport": "_leakage",
    "PairDuplicates": "_leakage",
    "describe_duplicates": "_leakage",
    "Standardizer": "_preprocess",
    "fit_standardizer": "_preprocess",
    "read_idx": "_idx",
    "write_idx": "_idx",
    "load_mnist": "_idx",
    "download_mnist": "_download",
    "MNIST_URL_BASE": "_download",
    "MNIST_FILES": "_idx",
    "load_checksums": "_download",
    "Augment": "_augment",
    "random_crop": "_augment",
    "hflip": "_augment",
    "random_affine": "_augment",
    "gaussian_noise": "_augment",
    "random_erase": "_augment",
    "load_table": "_files",
    "load_npz": "_files",
    "load_image_folder": "_files",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
