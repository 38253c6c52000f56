"""The command line as a user meets it: real processes, real files, exit codes, messages."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading

import numpy as np
import pytest

from tunelab.data import MNIST_FILES, write_idx


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("tunelab 0.1.0")


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_train_then_evaluate_linear(cli, root, tmp_path):
    out = tmp_path / "runs" / "linear"
    result = cli("train", str(root / "examples/linear_gd.yaml"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(epoch_lines) == 100
    assert all("val loss" in line for line in epoch_lines)
    assert "learned: y = 1.9" in result.stdout or "learned: y = 2.0" in result.stdout
    for name in (
        "spec.yaml",
        "env.json",
        "splits.json",
        "history.jsonl",
        "model.safetensors",
        "predictions.npz",
        "metrics.json",
    ):
        assert (out / name).is_file(), name

    before = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").write_text(json.dumps({"val": before["val"]}))  # forget the test result
    result = cli("evaluate", str(out), "--split", "test")
    assert result.returncode == 0, result.stderr
    assert "rmse" in result.stdout and "test" in result.stdout
    after = json.loads((out / "metrics.json").read_text())
    assert after["test"]["mse"]["value"] == pytest.approx(before["test"]["mse"]["value"], rel=1e-6)
    assert after["test"]["mse"]["ci"] == before["test"]["mse"]["ci"]  # same seed, same interval


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_overrides_reach_the_resolved_spec(cli, root, tmp_path):
    out = tmp_path / "r"
    result = cli(
        "train",
        str(root / "examples/linear_gd.yaml"),
        "--out",
        str(out),
        "--set",
        "train.epochs=3",
        "--set",
        "train.optimizer.lr=0.05",
        "-q",
    )
    assert result.returncode == 0, result.stderr
    assert not any(ln.startswith("epoch") for ln in result.stdout.splitlines())  # quiet
    spec = (out / "spec.yaml").read_text()
    assert "epochs: 3" in spec and "lr: 0.05" in spec
    assert len((out / "history.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.optimzer.lr=1", ["`train.optimzer`", "did you mean `train.optimizer`"]),
        ("model.name=resnet", ["unknown model 'resnet'", "linear, mlp, cnn"]),
        ("train.optimizer.name=adm", ["unknown optimizer 'adm'", "did you mean `adam`", "lbfgs"]),
        ("train.epochs=0", ["`train.epochs`", "greater than or equal to 1", "got 0"]),
        ("train.optimizer.lr=-1", ["`train.optimizer.lr`", "greater than 0", "got -1"]),
    ],
)
def test_spec_errors_exit_2_without_traceback(cli, root, override, expected):
    result = cli("train", str(root / "examples/mnist_cnn.yaml"), "--set", override)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in expected:
        assert fragment in result.stderr


def test_missing_data_file_names_the_path(cli, root, tmp_path):
    missing = tmp_path / "nowhere" / "table.csv"
    result = cli(
        "train",
        str(root / "examples/mnist_cnn.yaml"),
        "--set",
        "data.source=csv",
        "--set",
        f"data.path={missing}",
        "--set",
        "data.target=y",
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_missing_spec_and_run(cli, tmp_path):
    result = cli("train", "nope.yaml")
    assert result.returncode == 2 and "spec file not found: nope.yaml" in result.stderr
    result = cli("evaluate", str(tmp_path / "no-run"))
    assert result.returncode == 2 and "is not a tunelab run" in result.stderr


def test_usage_errors_exit_2(cli):
    assert cli("trian").returncode == 2
    assert cli("train").returncode == 2


def test_debug_shows_the_traceback(cli):
    result = cli("train", "nope.yaml", "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_datasets_lists_every_source(cli):
    result = cli("datasets")
    assert result.returncode == 0
    for name in (
        "mnist-5k",
        "digits",
        "iris",
        "wine",
        "breast-cancer",
        "diabetes",
        "linear",
        "mnist",
    ):
        assert name in result.stdout


@pytest.fixture
def mirror(tmp_path):
    """A tiny MNIST in IDX files, served over HTTP from 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(20) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 10).astype(np.uint8),
    }
    assert set(arrays) == set(MNIST_FILES)
    for name, array in arrays.items():
        write_idx(served / f"{name}.gz", array, compress=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", served
    server.shutdown()
    server.server_close()


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_data_download_from_a_local_mirror_then_train(cli, mirror, tmp_path):
    url, served = mirror
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in served.iterdir()}
    (tmp_path / "sums.json").write_text(json.dumps(sums))
    target = tmp_path / "mnist"
    result = cli(
        "data",
        "download",
        "mnist",
        "--dir",
        str(target),
        "--url-base",
        url,
        "--checksums",
        str(tmp_path / "sums.json"),
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(sums)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"data: {{source: mnist, path: {target}}}\nsplit: {{test: source, val: 0.5}}\n"
        "model: {name: cnn, channels: 4}\ntrain: {epochs: 1, batch_size: 8}\n"
    )
    result = cli("train", str(spec), "--out", str(tmp_path / "run"), "-q")
    assert result.returncode == 0, result.stderr
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert splits["test"]["indices"] == list(range(20, 30))  # MNIST's own test images


def test_data_download_checksum_mismatch_leaves_nothing(cli, mirror, tmp_path):
    url, _ = mirror
    target = tmp_path / "mnist"
    result = cli("data", "download", "mnist", "--dir", str(target), "--url-base", url)
    assert result.returncode == 2
    assert "checksum mismatch" in result.stderr and "Traceback" not in result.stderr
    assert not any(target.iterdir())


def test_data_download_unknown_set(cli):
    result = cli("data", "download", "mnsit")
    assert result.returncode == 2 and "did you mean `mnist`" in result.stderr
