"""Data sets from an image folder: one sub-folder of images per class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tunelab.data._dataset import Dataset
from tunelab.data._file_checks import existing
from tunelab.data._lazy import parse_bytes, scan
from tunelab.errors import DataError

if TYPE_CHECKING:
    from PIL import Image

# Pillow is imported inside the loader: it adds to every `import tunelab` otherwise.

__all__ = ["load_image_folder"]

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )


def _class_folders(root: Path) -> list[Path]:
    """The class sub-folders of ``root``, sorted; at least two."""
    if not root.is_dir():
        raise DataError(f"{root} is a file; expected a folder with one sub-folder per class.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        loose = len(_image_files(root))
        found = f" (found {loose} image(s) directly in it)" if loose else ""
        raise DataError(
            f"{root} has no class sub-folders{found}; expected one sub-folder per "
            "class, e.g. cats/ and dogs/, each holding that class's images."
        )
    if len(class_dirs) < 2:
        raise DataError(
            f"{root} has a single class sub-folder ({class_dirs[0].name}); "
            "classification needs at least two."
        )
    return class_dirs


def _headers(
    class_dirs: list[Path],
) -> tuple[list[Path], list[int], list[str], dict[tuple[int, int], Path]]:
    """Every image file with its label, mode and size, from the headers only (no pixels
    decoded): ``(files, labels, modes, {(H, W): first file of that size})``."""
    from PIL import Image, UnidentifiedImageError

    files: list[Path] = []
    labels: list[int] = []
    modes: list[str] = []
    sizes: dict[tuple[int, int], Path] = {}
    for label, folder in enumerate(class_dirs):
        found = _image_files(folder)
        if not found:
            raise DataError(
                f"class folder {folder} holds no images; expected files ending in "
                f"{', '.join(sorted(_IMAGE_SUFFIXES))}. Add images or remove it."
            )
        for file in found:
            try:
                with Image.open(file) as image:
                    modes.append(image.mode)
                    sizes.setdefault((image.height, image.width), file)
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(
                    f"could not read image {file}: {e}. Replace or remove it."
                ) from None
            files.append(file)
            labels.append(label)
    return files, labels, modes, sizes


def load_image_folder(
    path: str | Path,
    *,
    size: Sequence[int] | int | None = None,
    grayscale: bool | None = None,
    cache: str = "memory",
    memory_limit: str | int = "2GB",
    workers: int = 0,
) -> Dataset:
    """Load a folder with one sub-folder of images per class, e.g. ``pets/cat/1.jpg``.

    Args:
        path: the folder; its sub-folder names, sorted, are the classes.
        size: ``[H, W]`` (or one int for a square) to resize every image to, bilinearly.
            Needed when the images differ in size.
        grayscale: one channel (True) or RGB (False); by default one channel exactly when
            every image is grayscale.

        cache: ``memory`` decodes every image into one array (the fast path); ``none``
            decodes them through a DataLoader every epoch (a lazy data set: memory stays at
            a few batches); ``auto``: memory when the decoded images fit ``memory_limit``.
        workers: DataLoader worker processes for ``cache: none``.

    Images (png, jpg, jpeg, bmp, gif, tif, webp) become float32 in ``[0, 1]``, shape
    ``(n, C, H, W)``; other files are ignored.
    """
    from PIL import Image, UnidentifiedImageError

    # headers first, to learn the modes and sizes before decoding any pixels
    root = existing(path, "image folder")
    class_dirs = _class_folders(root)
    files, labels, modes, sizes = _headers(class_dirs)

    if size is None and len(sizes) > 1:
        (s1, f1), (s2, f2) = list(sizes.items())[:2]
        raise DataError(
            f"images in {root} differ in size: {f1} is {s1[0]}x{s1[1]} (HxW) but "
            f"{f2} is {s2[0]}x{s2[1]}; set `data.size: [H, W]` to resize them all."
        )
    if size is not None:
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    else:
        height, width = next(iter(sizes))
    if grayscale is None:
        grayscale = all(
            mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") for mode in modes
        )

    channels = 1 if grayscale else 3
    y = np.asarray(labels, dtype=np.int64)
    classes = [p.name for p in class_dirs]
    decoded = len(files) * channels * height * width * 4
    if cache == "none" or (cache == "auto" and decoded > parse_bytes(memory_limit)):
        images = ImageFiles(files, labels, grayscale, (height, width))
        lazy = scan(images, where=f"image folder {root}", workers=workers)[0]
        return Dataset(
            X=None, y=y, task="classification", name=root.name, classes=classes, lazy=lazy
        )
    X = np.empty((len(files), channels, height, width), dtype=np.float32)
    for i, file in enumerate(files):
        try:
            with Image.open(file) as image:
                X[i] = _pixels(image, grayscale, (height, width))
        except (UnidentifiedImageError, OSError) as e:
            raise DataError(f"could not read image {file}: {e}. Replace or remove it.") from None
    return Dataset(X=X, y=y, task="classification", name=root.name, classes=classes)


class ImageFiles:
    """Image files decoded one at a time: ``images[i]`` is ``(pixels (C, H, W), label)``."""

    def __init__(self, files, labels, grayscale: bool, size: tuple[int, int]) -> None:
        self.files, self.labels, self.grayscale, self.size = files, labels, grayscale, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        pixels = decode(self.files[i], grayscale=self.grayscale, size=self.size)
        return pixels, self.labels[i]


def _pixels(image: Image.Image, grayscale: bool, size: tuple[int, int]) -> np.ndarray:
    """One image as float32 ``(C, H, W)`` in ``[0, 1]``, resized bilinearly to ``size``."""
    from PIL import Image

    if grayscale and image.mode.startswith(("I", "F")):
        # 16-bit and float grayscale: scale in float so no precision is lost to 8 bits.
        peak = 1.0 if image.mode == "F" else 65535.0
        image = Image.fromarray(np.asarray(image, dtype=np.float32) / peak)
        scale = 1.0
    else:
        image = image.convert("L" if grayscale else "RGB")
        scale = 1.0 / 255.0
    if (image.height, image.width) != size:
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) * scale
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


IMAGE_SUFFIXES = frozenset(_IMAGE_SUFFIXES)


def decode(
    file: Path, *, grayscale: bool, size: tuple[int, int], resize: bool = True
) -> np.ndarray:
    """One image file as float32 ``(C, H, W)`` in ``[0, 1]``, as in training; with
    ``resize=False`` an image of another size is refused instead of resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            if not resize and (image.height, image.width) != tuple(size):
                raise DataError(
                    f"image {file} is {image.height}x{image.width} (HxW), but the run was "
                    f"trained on {size[0]}x{size[1]} images (without data.size to resize them)"
                )
            return _pixels(image, grayscale, tuple(size))
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"could not read image {file}: {e}") from None
