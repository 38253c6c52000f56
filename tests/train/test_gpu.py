"""On a CUDA machine: device auto picks the GPU, data lives there, bf16 autocast is on."""

from __future__ import annotations

import json

import pytest
import torch

import tunelab

pytestmark = pytest.mark.gpu


def test_auto_device_trains_on_cuda_with_bf16(tmp_path):
    from tunelab.train import prepare

    spec = tunelab.load_spec("examples/mnist_cnn.yaml", overrides=["train.epochs=2"])
    prep = prepare(spec)
    assert prep.device.type == "cuda" and prep.X.is_cuda and prep.bf16
    run = tunelab.train(spec, out=tmp_path / "gpu", quiet=True)
    env = json.loads((run.path / "env.json").read_text())
    assert env["device"].startswith("cuda") and env["cuda_device"]
    assert run.metrics["test"]["accuracy"]["value"] > 0.8
    again = tunelab.evaluate_run(run, split="test", quiet=True)
    assert again["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"]["value"], abs=1e-6)
    assert torch.cuda.max_memory_allocated() > 0
