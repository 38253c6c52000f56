"""Lazy data sets in training: a user's Dataset tuned with CV and sealed; an image folder read
with ``cache: none`` trains to the same metrics as in memory, in less memory than its images."""

from __future__ import annotations

import json
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

import tunelab
from tunelab.spec import load_spec
from tunelab.train import prepare

MODULE = """
import torch
from torch.utils.data import Dataset


class Blobs(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 6, generator=g) + 1.5 * self.y[:, None].float()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def make(n):
    return Blobs(n, 0), Blobs(n // 4, 1)
"""

SIDE, COUNT = 64, 640  # RGB 64x64: 640 images are 31.5 MB decoded (float32)


def test_a_user_dataset_tunes_with_3_fold_cv_and_its_test_part_is_sealed(tmp_path, monkeypatch):
    (tmp_path / "blobdata.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    spec = {
        "name": "user",
        "data": {"source": "python", "factory": "blobdata:make", "kwargs": {"n": 120}},
        "split": {"test": "source", "cv": {"folds": 3}},
        "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 3, "batch_size": 16},
        "evaluate": {"ci": {"resamples": 200}},
        "tune": {
            "trials": 2,
            "sampler": "random",
            "pruner": "none",
            "space": {"train.optimizer.lr": [0.01, 0.05]},
        },
    }
    spec["data"]["cache"] = "none"
    result = tunelab.tune_study(spec, out=tmp_path / "s", quiet=True)
    sys.modules.pop("blobdata", None)
    seal = json.loads((tmp_path / "s" / "seal.json").read_text())
    splits = json.loads((tmp_path / "s" / "best" / "splits.json").read_text())
    assert seal["test_size"] == splits["test"]["size"] == 30  # the factory's own test part
    assert splits["test"]["indices"] == list(range(120, 150))
    assert seal["test_fingerprint"] == splits["test"]["fingerprint"]
    assert len(seal["evaluations"]) == 1
    trial = json.loads((tmp_path / "s" / "trials" / "0" / "trial.json").read_text())
    assert len(trial["fold_values"]) == 3 and trial["state"] == "COMPLETE"
    assert result.test_metrics["accuracy"]["value"] > 0.8  # the blobs are easy to separate


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for i in range(COUNT):
        label = i % 2
        pixels = rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
        pixels[: SIDE // 2, :, label] //= 4  # a dimmer half of one channel marks the class
        (root / f"c{label}").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(root / f"c{label}" / f"{i}.png")
    return root


def image_spec(root, cache: str, workers: int = 0) -> dict:
    return {
        "name": f"images-{cache}",
        "seed": 3,
        "data": {"source": "images", "path": str(root), "cache": cache, "workers": workers},
        "split": {"test": 0.2, "val": 0.2},
        "model": {"name": "linear"},
        "train": {"epochs": 2, "batch_size": 32, "optimizer": {"name": "adam", "lr": 1e-3}},
        "evaluate": {"ci": {"resamples": 0}},
    }


def test_images_with_cache_none_match_memory_in_less_memory_than_the_images(folder, tmp_path):
    decoded = COUNT * 3 * SIDE * SIDE * 4
    tunelab.train(image_spec(folder, "memory"), out=tmp_path / "warm", quiet=True)  # imports
    peaks, metrics = {}, {}
    for cache in ("memory", "none"):
        tracemalloc.start()
        run = tunelab.train(image_spec(folder, cache), out=tmp_path / cache, quiet=True)
        peaks[cache] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        metrics[cache] = json.loads((run.path / "metrics.json").read_text())
    print(
        f"decoded {decoded / 1e6:.1f} MB; peak traced: {peaks['memory'] / 1e6:.1f} MB in "
        f"memory, {peaks['none'] / 1e6:.1f} MB with cache: none"
    )
    assert peaks["memory"] > decoded > peaks["none"]
    for part in ("val", "test"):
        for name, slot in metrics["memory"][part].items():
            assert metrics["none"][part][name]["value"] == pytest.approx(slot["value"], abs=1e-5)
    assert metrics["none"]["test"]["accuracy"]["value"] > 0.9


def test_a_lazy_part_trains_on_the_batches_of_the_part_in_memory(folder):
    lazy = prepare(load_spec(image_spec(folder, "none", workers=1)))  # read by a worker
    held = prepare(load_spec(image_spec(folder, "memory")))
    from tunelab.train._batches import batches_of

    idx = lazy.splits.folds[0].train
    t_idx = torch.as_tensor(idx)
    streamed = batches_of(
        (lazy.inputs(idx), lazy.y[t_idx]), lazy.plan, torch.Generator().manual_seed(1)
    )
    in_memory = batches_of(
        (held.inputs(idx), held.y[t_idx]), held.plan, torch.Generator().manual_seed(1)
    )
    pairs = list(zip(streamed.epoch(), in_memory.epoch(), strict=True))
    assert len(pairs) == streamed.steps == in_memory.steps > 1
    for (xa, ya), (xb, yb) in pairs:
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)
        torch.testing.assert_close(ya, yb, rtol=0, atol=0)


def test_a_read_only_sample_becomes_a_tensor_without_torchs_warning():
    import warnings

    from tunelab.data._lazy import as_input

    sample = np.arange(6, dtype=np.float32).reshape(2, 3)
    sample.flags.writeable = False  # as a memory-mapped or shared image is
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensor = as_input(sample)
    assert tensor.dtype == torch.float32 and tensor.tolist() == sample.tolist()
    tensor[0, 0] = 99.0  # its own storage: the sample is untouched
    assert sample[0, 0] == 0.0
