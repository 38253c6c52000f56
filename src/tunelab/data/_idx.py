"""IDX files (the format of MNIST and its relatives) and the full MNIST set read from a folder.

An IDX file is a 4-byte magic (two zero bytes, a type byte, a dimension-count byte), one
big-endian uint32 per dimension, then the values in C order, big-endian. Files are often
gzipped; that is detected from the content, not the name.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tunelab.data._dataset import Dataset
from tunelab.errors import DataError

__all__ = ["MNIST_FILES", "load_mnist", "read_idx", "write_idx"]

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# IDX type byte -> big-endian numpy dtype.
_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a native-byte-order numpy array.

    Args:
        path: the file; gzip is recognised by its magic bytes, whatever the name.

    Returns:
        An array with the file's dtype (uint8, int8, int16, int32, float32 or float64) and shape.

    Raises:
        DataError: the file is missing, is not IDX, or its size disagrees with its header.

    Example:
        >>> images = read_idx("mnist/train-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> images.shape, images.dtype  # doctest: +SKIP
        ((60000, 28, 28), dtype('uint8'))
    """
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) if gzipped else nullcontext(raw) as f:
                return _parse(f, path)
    except FileNotFoundError:
        raise DataError(
            f"IDX file not found: {path}; check the path (MNIST files can be fetched with "
            "`tunelab data download mnist`)"
        ) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"could not read IDX file {path}: {exc or type(exc).__name__}; "
            "the file is probably corrupt or truncated, download or write it again"
        ) from None


def _parse(f: BinaryIO, path: Path) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00":
        raise DataError(
            f"{path} is not an IDX file: expected the magic bytes 00 00 <type> <dims>, "
            f"got {head.hex(' ') or 'an empty file'}"
        )
    dtype = _IDX_TYPES.get(head[2])
    if dtype is None:
        known = ", ".join(f"0x{code:02X} ({dt.name})" for code, dt in _IDX_TYPES.items())
        raise DataError(f"{path}: unknown IDX type byte 0x{head[2]:02X}; expected one of {known}")
    ndim = head[3]
    dims_bytes = f.read(4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise DataError(f"{path} is truncated: its header announces {ndim} dims but ends early")
    shape = struct.unpack(f">{ndim}I", dims_bytes)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    # Grow the buffer chunk by chunk: a corrupt header must not make us allocate terabytes.
    buf = bytearray()
    while len(buf) < expected:
        chunk = f.read(min(_CHUNK, expected - len(buf)))
        if not chunk:
            break
        buf += chunk
    if len(buf) < expected:
        raise DataError(
            f"{path} is truncated: shape {shape} of {dtype.name} needs {expected} bytes of data, "
            f"the file has {len(buf)}; download or write it again"
        )
    extra = len(f.read())
    if extra:
        raise DataError(
            f"{path} has {extra} bytes after the {expected} bytes that shape {shape} of "
            f"{dtype.name} needs; the header or the file is corrupt"
        )
    array = np.frombuffer(buf, dtype=dtype).reshape(shape)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool = False) -> None:
    """Write ``array`` as an IDX file, the inverse of :func:`read_idx`.

    Args:
        path: where to write (overwritten if present).
        array: uint8, int8, int16, int32, float32 or float64 values; each dimension below 2**32.
        compress: gzip the file (name it ``*.gz`` by convention; reading does not need it).

    Raises:
        DataError: the dtype or shape cannot be stored in IDX.
    """
    array = np.asarray(array)
    code = next(
        (c for c, dt in _IDX_TYPES.items() if array.dtype.newbyteorder(">") == dt),
        None,
    )
    if code is None:
        names = ", ".join(dt.name for dt in _IDX_TYPES.values())
        raise DataError(
            f"cannot write dtype {array.dtype} to IDX: expected one of {names}; "
            "convert first, e.g. array.astype(np.uint8)"
        )
    if array.ndim > 255 or any(s >= 2**32 for s in array.shape):
        raise DataError(
            f"cannot write shape {array.shape} to IDX: at most 255 dims, each below 2**32"
        )
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    data = np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).reshape(-1).view(np.uint8)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compress else nullcontext(raw) as f,
    ):
        f.write(header)
        f.write(data)


def load_mnist(folder: str | os.PathLike[str]) -> Dataset:
    """Load the full MNIST set (or any set in its four-file layout) from ``folder``.

    Each of :data:`MNIST_FILES` may be raw or end in ``.gz`` (the raw one wins when both exist).
    The train images come first, then the test images, whose indices are ``source_test``.

    Args:
        folder: the folder holding the four files.

    Returns:
        A classification :class:`Dataset`: X float32 in [0, 1] of shape (n, 1, rows, cols),
        y int64 in 0..9, classes ``["0", ..., "9"]``.

    Raises:
        DataError: files are missing or unreadable, or counts, shapes or labels disagree.

    Example:
        >>> ds = load_mnist("data/mnist")  # doctest: +SKIP
        >>> ds.X.shape, len(ds.source_test)  # doctest: +SKIP
        ((70000, 1, 28, 28), 10000)
    """
    folder = Path(folder)
    paths: dict[str, Path] = {}
    missing = []
    for name in MNIST_FILES:
        found = [p for p in (folder / name, folder / f"{name}.gz") if p.is_file()]
        if found:
            paths[name] = found[0]
        else:
            missing.append(f"{name}[.gz]")
    if missing:
        raise DataError(
            f"MNIST files missing in {folder}: {', '.join(missing)}; expected all of "
            f"{', '.join(MNIST_FILES)} (raw or .gz); run: tunelab data download mnist --dir {folder}"
        )

    parts = []
    for split in ("train", "t10k"):
        images_path = paths[f"{split}-images-idx3-ubyte"]
        labels_path = paths[f"{split}-labels-idx1-ubyte"]
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise DataError(
                f"{images_path}: expected uint8 images of shape (n, rows, cols), "
                f"got {images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(
                f"{labels_path}: expected integer labels of shape (n,), "
                f"got {labels.dtype} of shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{split} images and labels disagree: {images_path} has {len(images)} images, "
                f"{labels_path} has {len(labels)} labels; download the files again"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(
                f"{labels_path}: expected labels in 0..9, got values from {labels.min()} "
                f"to {labels.max()}; this is not an MNIST-style label file"
            )
        parts.append((images, labels))
    (train_x, train_y), (test_x, test_y) = parts
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(
            f"train and test images differ in size in {folder}: {train_x.shape[1:]} vs "
            f"{test_x.shape[1:]}; the files come from different data sets"
        )

    n_train, n_test = len(train_x), len(test_x)
    X = np.concatenate([train_x, test_x]).astype(np.float32)
    X /= 255.0
    return Dataset(
        X=X.reshape(n_train + n_test, 1, *train_x.shape[1:]),
        y=np.concatenate([train_y, test_y]).astype(np.int64),
        task="classification",
        name="mnist",
        classes=[str(i) for i in range(10)],
        source_test=np.arange(n_train, n_train + n_test),
    )
