"""Downloading the full MNIST set: streamed, checksummed, and never left half-written."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab._version import __version__
from tunelab.data._idx import MNIST_FILES
from tunelab.errors import DataError

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["MNIST_URL_BASE", "download_mnist", "load_checksums"]

MNIST_URL_BASE = "https://ossci-datasets.s3.amazonaws.com/mnist/"

# MD5 of the official gzipped files.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")
_CHUNK = 1 << 16


def download_mnist(
    folder: str | os.PathLike[str],
    *,
    url_base: str = MNIST_URL_BASE,
    checksums: Mapping[str, str] | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> list[Path]:
    """Download the four gzipped MNIST files into ``folder`` and verify their MD5.

    Files already present with the right checksum are not fetched again. Each file is streamed
    to ``<name>.part`` and renamed only once verified, so a failure leaves no partial file.

    Args:
        folder: destination, created if needed; then readable with :func:`load_mnist`.
        url_base: where the files live (``url_base + "train-images-idx3-ubyte.gz"``, ...).
        checksums: file name -> md5 hex for a private mirror (see :func:`load_checksums`);
            keys may omit the ``.gz``. Default: the official files' checksums.
        progress: show a progress bar when stderr is a terminal.
        timeout: seconds to wait for the connection and for each read.

    Returns:
        The four file paths, in :data:`MNIST_FILES` order.

    Raises:
        DataError: an HTTP error, no connection, a timeout, a short read or a checksum mismatch.

    Example:
        >>> download_mnist("data/mnist")  # doctest: +SKIP
        >>> load_mnist("data/mnist").X.shape  # doctest: +SKIP
        (70000, 1, 28, 28)
    """
    expected = _expected_md5(checksums)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the download folder {folder}: {exc}") from None
    url_base = url_base if url_base.endswith("/") else url_base + "/"

    paths = [folder / f"{name}.gz" for name in MNIST_FILES]
    todo = [p for p in paths if not (p.is_file() and _md5_file(p) == expected[p.name])]
    with _progress_bar(progress and bool(todo)) as bar:
        for dest in todo:
            url = url_base + dest.name
            part = dest.with_name(dest.name + ".part")
            try:
                got = _fetch(url, part, timeout=timeout, bar=bar)
                if got != expected[dest.name]:
                    raise DataError(
                        f"checksum mismatch for {dest.name} from {url}: expected md5 "
                        f"{expected[dest.name]}, got {got}; the file is damaged or differs from "
                        "the official one (for a private mirror pass its checksums: --checksums FILE.json)"
                    )
                os.replace(part, dest)
            finally:
                part.unlink(missing_ok=True)
    return paths


def load_checksums(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a JSON object of file name -> md5 hex, e.g. for a private MNIST mirror.

    Example file::

        {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873", ...}

    Raises:
        DataError: the file is missing, is not JSON, or is not such an object.
    """
    path = Path(path)
    example = 'e.g. {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873", ...}'
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"checksums file not found: {path}; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"could not read checksums file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"checksums file {path} is not valid JSON ({exc}); expected an object of "
            f"file name -> md5, {example}"
        ) from None
    if not isinstance(data, dict):
        raise DataError(
            f"checksums file {path}: expected a JSON object of file name -> md5, "
            f"got a {type(data).__name__}; {example}"
        )
    return _check_md5s(data, f"checksums file {path}")


def _check_md5s(checksums: Mapping[str, str], origin: str) -> dict[str, str]:
    bad = [
        f"{k!r}: {v!r}"
        for k, v in checksums.items()
        if not (isinstance(k, str) and isinstance(v, str) and _MD5_RE.fullmatch(v))
    ]
    if bad:
        raise DataError(
            f"{origin}: expected file name -> md5 (32 hex digits), got {', '.join(bad)}"
        )
    return {k: v.lower() for k, v in checksums.items()}


def _expected_md5(checksums: Mapping[str, str] | None) -> dict[str, str]:
    """The md5 of each ``.gz`` file: the official ones, or the given ones (keys with/without .gz)."""
    if checksums is None:
        return dict(MNIST_MD5)
    given = _check_md5s(checksums, "checksums")
    expected = {}
    for name in MNIST_FILES:
        md5 = given.get(f"{name}.gz") or given.get(name)
        if md5 is not None:
            expected[f"{name}.gz"] = md5
    missing = [f"{name}.gz" for name in MNIST_FILES if f"{name}.gz" not in expected]
    if missing:
        raise DataError(
            f"checksums has no md5 for {', '.join(missing)}; expected an entry for each of "
            f"{', '.join(MNIST_MD5)}, got keys {sorted(given)}"
        )
    return expected


def _md5_file(path: Path) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _fetch(url: str, part: Path, *, timeout: float, bar: Progress | None) -> str:
    """Stream ``url`` into ``part``; return the md5 hex of what was received."""
    request = urllib.request.Request(url, headers={"User-Agent": f"tunelab/{__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DataError(
            f"HTTP {exc.code} for {url} ({exc.reason}); check the URL base (--url-base)"
        ) from None
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, BaseException) else Exception(exc.reason)
        raise DataError(
            f"could not connect to {url}: {_reason(reason, timeout)}; check the network "
            "and the URL base (--url-base)"
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise DataError(f"could not connect to {url}: {_reason(exc, timeout)}") from None

    md5 = hashlib.md5(usedforsecurity=False)
    received = 0
    with response, open(part, "wb") as out:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if bar is not None:
            task = bar.add_task(part.name.removesuffix(".part"), total=length)
        try:
            while chunk := response.read1(_CHUNK):
                out.write(chunk)
                md5.update(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.advance(task, len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise DataError(
                f"download of {url} failed after {received} bytes: {_reason(exc, timeout)}; "
                "try again"
            ) from None
    if length is not None and received != length:
        raise DataError(
            f"download of {url} ended early: got {received} of {length} bytes "
            "(the connection was closed); try again"
        )
    return md5.hexdigest()


def _progress_bar(enabled: bool) -> Progress | nullcontext[None]:
    """A rich progress bar on stderr when ``enabled`` and stderr is a terminal, else None."""
    if not (enabled and sys.stderr.isatty()):
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
