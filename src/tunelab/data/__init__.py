"""Data: sources, splits, preprocessing and batched augmentation."""

from tunelab.data._augment import (
    Augment,
    gaussian_noise,
    hflip,
    random_affine,
    random_crop,
    random_erase,
)
from tunelab.data._dataset import Dataset, Task
from tunelab.data._download import MNIST_URL_BASE, download_mnist, load_checksums
from tunelab.data._files import load_image_folder, load_npz, load_table
from tunelab.data._idx import MNIST_FILES, load_mnist, read_idx, write_idx
from tunelab.data._leakage import (
    DuplicateReport,
    PairDuplicates,
    describe_duplicates,
    find_duplicates,
)
from tunelab.data._preprocess import Standardizer, fit_standardizer
from tunelab.data._sources import BUILTINS, BuiltinInfo, load_dataset
from tunelab.data._splits import (
    Fold,
    Splits,
    fingerprint,
    make_cv,
    make_splits,
    outer_cv,
    outer_folds,
)

__all__ = [
    "Dataset",
    "Task",
    "load_dataset",
    "BUILTINS",
    "BuiltinInfo",
    "Splits",
    "Fold",
    "make_splits",
    "make_cv",
    "outer_cv",
    "outer_folds",
    "fingerprint",
    "find_duplicates",
    "DuplicateReport",
    "PairDuplicates",
    "describe_duplicates",
    "Standardizer",
    "fit_standardizer",
    "read_idx",
    "write_idx",
    "load_mnist",
    "download_mnist",
    "MNIST_URL_BASE",
    "MNIST_FILES",
    "load_checksums",
    "Augment",
    "random_crop",
    "hflip",
    "random_affine",
    "gaussian_noise",
    "random_erase",
    "load_table",
    "load_npz",
    "load_image_folder",
]
