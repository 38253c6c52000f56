"""IDX reading and writing, loading MNIST from a folder, and downloading it from a local server."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tunelab.data import (
    MNIST_FILES,
    download_mnist,
    load_checksums,
    load_mnist,
    read_idx,
    write_idx,
)
from tunelab.errors import DataError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(7,), (3, 5), (4, 2, 3), (2, 3, 1, 4)]


# ---------------------------------------------------------------------------------------------
# read_idx / write_idx


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path, dtype, shape, compress):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        array = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    else:
        array = rng.normal(size=shape).astype(dtype)
    path = tmp_path / "a.idx"  # no .gz on purpose: gzip is detected from the content
    write_idx(path, array, compress=compress)

    assert (path.read_bytes()[:2] == b"\x1f\x8b") is compress
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_header_is_big_endian(tmp_path):
    path = tmp_path / "a.idx"
    write_idx(path, np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16))
    assert path.read_bytes() == bytes.fromhex(
        "0000 0b02 00000002 00000003 0001 0002 0003 0004 0005 0006".replace(" ", "")
    )


def test_write_accepts_non_native_and_non_contiguous(tmp_path):
    array = np.arange(12, dtype=">f8").reshape(3, 4).T
    write_idx(tmp_path / "a.idx", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match=r"cannot write dtype int64.*astype"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.int64))


def _write_bytes(path: Path, data: bytes, *, compress: bool) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_payload(tmp_path, compress):
    good = tmp_path / "good.idx"
    write_idx(good, np.arange(24, dtype=np.int32).reshape(2, 3, 4))
    bad = _write_bytes(tmp_path / "bad.idx", good.read_bytes()[:-5], compress=compress)
    with pytest.raises(DataError, match=r"bad\.idx is truncated.*96 bytes.*has 91"):
        read_idx(bad)


def test_truncated_header(tmp_path):
    bad = _write_bytes(tmp_path / "bad.idx", b"\x00\x00\x08\x03\x00\x00", compress=False)
    with pytest.raises(DataError, match=r"bad\.idx is truncated.*3 dims"):
        read_idx(bad)


def test_truncated_gzip_stream(tmp_path):
    good = tmp_path / "good.idx.gz"
    write_idx(good, np.arange(1000, dtype=np.uint8), compress=True)
    bad = tmp_path / "bad.idx.gz"
    bad.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"could not read IDX file .*bad\.idx\.gz"):
        read_idx(bad)


def test_extra_bytes(tmp_path):
    good = tmp_path / "good.idx"
    write_idx(good, np.arange(6, dtype=np.uint8))
    bad = _write_bytes(tmp_path / "bad.idx", good.read_bytes() + b"xyz", compress=False)
    with pytest.raises(DataError, match=r"bad\.idx has 3 bytes after"):
        read_idx(bad)


@pytest.mark.parametrize("compress", [False, True])
def test_wrong_magic(tmp_path, compress):
    bad = _write_bytes(tmp_path / "bad.idx", b"PK\x03\x04" + bytes(20), compress=compress)
    with pytest.raises(DataError, match=r"bad\.idx is not an IDX file.*50 4b 03 04"):
        read_idx(bad)


def test_empty_file(tmp_path):
    bad = _write_bytes(tmp_path / "bad.idx", b"", compress=False)
    with pytest.raises(DataError, match=r"bad\.idx is not an IDX file.*empty"):
        read_idx(bad)


def test_unknown_type_byte(tmp_path):
    bad = _write_bytes(tmp_path / "bad.idx", b"\x00\x00\x0a\x01\x00\x00\x00\x01x", compress=False)
    with pytest.raises(DataError, match=r"bad\.idx: unknown IDX type byte 0x0A.*0x08 \(uint8\)"):
        read_idx(bad)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"IDX file not found: .*nope\.idx"):
        read_idx(tmp_path / "nope.idx")


# ---------------------------------------------------------------------------------------------
# load_mnist


def _fake_mnist(folder: Path, *, n_train=20, n_test=10, gz=(1, 2), seed=0) -> dict:
    """Write a tiny MNIST; the files whose index is in ``gz`` are gzipped and named ``*.gz``."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, array) in enumerate(arrays.items()):
        write_idx(folder / (f"{name}.gz" if i in gz else name), array, compress=i in gz)
    return arrays


def test_load_mnist(tmp_path):
    arrays = _fake_mnist(tmp_path)
    ds = load_mnist(tmp_path)

    assert ds.X.shape == (30, 1, 28, 28)
    assert ds.X.dtype == np.float32
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0
    images = np.concatenate([arrays["train-images-idx3-ubyte"], arrays["t10k-images-idx3-ubyte"]])
    np.testing.assert_array_equal(np.rint(ds.X[:, 0] * 255), images)
    labels = np.concatenate([arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]])
    assert ds.y.dtype == np.int64
    np.testing.assert_array_equal(ds.y, labels)
    np.testing.assert_array_equal(ds.source_test, np.arange(20, 30))
    assert ds.task == "classification"
    assert ds.name == "mnist"
    assert ds.classes == [str(i) for i in range(10)]
    assert ds.in_shape == (1, 28, 28)


def test_load_mnist_other_image_size(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("t10k", 2)):
        write_idx(
            tmp_path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 8, 6), np.uint8)
        )
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n, np.uint8))
    assert load_mnist(tmp_path).X.shape == (6, 1, 8, 6)


def test_load_mnist_missing_files(tmp_path):
    _fake_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as err:
        load_mnist(tmp_path)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "train-images" not in message.split(";")[0]
    assert str(tmp_path) in message
    assert f"run: tunelab data download mnist --dir {tmp_path}" in message


def test_load_mnist_count_mismatch(tmp_path):
    _fake_mnist(tmp_path, gz=())
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match=r"t10k images and labels disagree.*10 images.*9 labels"):
        load_mnist(tmp_path)


def test_load_mnist_label_out_of_range(tmp_path):
    _fake_mnist(tmp_path, gz=())
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(20, 10, np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: expected labels in 0\.\.9"):
        load_mnist(tmp_path)


# ---------------------------------------------------------------------------------------------
# download_mnist against a local HTTP server


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder; ``/short/<file>`` sends fewer bytes than announced, ``/stall/`` hangs."""

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/short/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + bytes(98))
            self.close_connection = True
        elif self.path.startswith("/stall/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(bytes(10))
            self.wfile.flush()
            time.sleep(1.0)
            self.close_connection = True
        else:
            super().do_GET()


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "www"``, with fake gzipped MNIST files."""
    root = tmp_path / "www"
    _fake_mnist(root, gz=(0, 1, 2, 3))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.glob("*.gz"))}
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download(tmp_path, server):
    dest = tmp_path / "new" / "mnist"
    paths = download_mnist(dest, url_base=server.url, checksums=server.md5, progress=False)

    assert paths == [dest / f"{name}.gz" for name in MNIST_FILES]
    assert sorted(p.name for p in dest.iterdir()) == sorted(server.md5)
    assert len(server.requests) == 4
    ds = load_mnist(dest)
    assert ds.X.shape == (30, 1, 28, 28)
    np.testing.assert_array_equal(ds.source_test, np.arange(20, 30))


def test_download_skips_correct_files(tmp_path, server):
    dest = tmp_path / "mnist"
    dest.mkdir()
    www = tmp_path / "www"
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (dest / name).write_bytes((www / name).read_bytes())
    (dest / "train-labels-idx1-ubyte.gz").write_bytes(b"stale")  # wrong checksum: fetched again

    # Keys without ".gz" are accepted too.
    checksums = {name.removesuffix(".gz"): md5 for name, md5 in server.md5.items()}
    download_mnist(dest, url_base=server.url.rstrip("/"), checksums=checksums, progress=False)
    assert sorted(server.requests) == ["/t10k-images-idx3-ubyte.gz", "/train-labels-idx1-ubyte.gz"]
    assert (dest / "train-labels-idx1-ubyte.gz").read_bytes() == (
        www / "train-labels-idx1-ubyte.gz"
    ).read_bytes()

    download_mnist(dest, url_base=server.url, checksums=server.md5, progress=False)
    assert len(server.requests) == 2


def test_download_checksum_mismatch(tmp_path, server):
    dest = tmp_path / "mnist"
    with pytest.raises(DataError) as err:
        download_mnist(dest, url_base=server.url, progress=False)  # official checksums
    message = str(err.value)
    assert "checksum mismatch for train-images-idx3-ubyte.gz" in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message
    assert server.md5["train-images-idx3-ubyte.gz"] in message
    assert list(dest.iterdir()) == []


def test_download_404(tmp_path, server):
    dest = tmp_path / "mnist"
    with pytest.raises(DataError, match=rf"HTTP 404 for {server.url}nowhere/train-images"):
        download_mnist(dest, url_base=server.url + "nowhere/", checksums=server.md5, progress=False)
    assert list(dest.iterdir()) == []


def test_download_connection_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "mnist"
    with pytest.raises(DataError, match=rf"could not connect to http://127\.0\.0\.1:{port}/"):
        download_mnist(dest, url_base=f"http://127.0.0.1:{port}/", progress=False)
    assert list(dest.iterdir()) == []


def test_download_short_read(tmp_path, server):
    dest = tmp_path / "mnist"
    with pytest.raises(DataError, match=r"ended early: got 100 of 1000 bytes"):
        download_mnist(dest, url_base=server.url + "short/", checksums=server.md5, progress=False)
    assert list(dest.iterdir()) == []


def test_download_timeout(tmp_path, server):
    dest = tmp_path / "mnist"
    with pytest.raises(DataError, match=r"failed after 10 bytes: timed out after 0\.2 s"):
        download_mnist(
            dest, url_base=server.url + "stall/", checksums=server.md5, progress=False, timeout=0.2
        )
    assert list(dest.iterdir()) == []


def test_download_interrupted_leaves_nothing(tmp_path, server, monkeypatch):
    class Interrupting:  # Ctrl-C arrives after the first chunk was written to the .part file
        def update(self, chunk):
            raise KeyboardInterrupt

    monkeypatch.setattr(hashlib, "md5", lambda **kwargs: Interrupting())
    dest = tmp_path / "mnist"
    with pytest.raises(KeyboardInterrupt):
        download_mnist(dest, url_base=server.url, checksums=server.md5, progress=False)
    assert list(dest.iterdir()) == []


def test_download_progress_bar(tmp_path, server, monkeypatch, capsys):
    download_mnist(tmp_path / "quiet", url_base=server.url, checksums=server.md5)
    assert capsys.readouterr() == ("", "")  # stderr is not a terminal: nothing printed

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    download_mnist(tmp_path / "loud", url_base=server.url, checksums=server.md5)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err


def test_download_checksums_missing_a_file(tmp_path, server):
    checksums = dict(server.md5)
    del checksums["t10k-images-idx3-ubyte.gz"]
    with pytest.raises(DataError, match=r"no md5 for t10k-images-idx3-ubyte\.gz"):
        download_mnist(tmp_path / "mnist", url_base=server.url, checksums=checksums)
    assert server.requests == []


# ---------------------------------------------------------------------------------------------
# load_checksums


def test_load_checksums(tmp_path):
    path = tmp_path / "sums.json"
    path.write_text(json.dumps({"a.gz": "F68B3C2DCBEAAA9FBDD348BBDEB94873"}))
    assert load_checksums(path) == {"a.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, r"checksums file not found: .*sums\.json"),
        ("{not json", r"sums\.json is not valid JSON"),
        ('["f68b3c2dcbeaaa9fbdd348bbdeb94873"]', r"sums\.json: expected a JSON object.*got a list"),
        ('{"a.gz": "1234"}', r"sums\.json: expected file name -> md5.*'a\.gz': '1234'"),
        ('{"a.gz": 5}', r"sums\.json: expected file name -> md5.*'a\.gz': 5"),
    ],
)
def test_load_checksums_errors(tmp_path, text, match):
    path = tmp_path / "sums.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DataError, match=match):
        load_checksums(path)
