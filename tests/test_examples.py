"""The reference systems, exactly as a reader of the textbook chapter would run them."""

from __future__ import annotations

import json
import re

import pytest
from safetensors.numpy import load_file


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_linear_gd_ends_with_slope_near_2(cli, root, tmp_path):
    result = cli("train", str(root / "examples/linear_gd.yaml"), "--out", str(tmp_path / "linear"))
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 100 and all(" val loss " in ln for ln in lines)
    weights = load_file(tmp_path / "linear" / "model.safetensors")
    slope = float(weights["net.1.weight"].reshape(-1)[0])  # preprocess: none -> the raw slope
    assert abs(slope - 2.0) < 0.05
    printed = float(re.search(r"learned: y = ([\d.]+) \* x", result.stdout).group(1))
    assert printed == pytest.approx(slope, abs=1e-3)
    val_losses = [float(re.search(r"val loss ([\d.e+-]+)", ln).group(1)) for ln in lines]
    assert val_losses[-1] < val_losses[0] / 10


@pytest.mark.slow
def test_mnist_cnn_textbook_numbers(cli, root, tmp_path):
    result = cli("train", str(root / "examples/mnist_cnn.yaml"), "--out", str(tmp_path / "mnist"))
    assert result.returncode == 0, result.stderr
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 10
    pattern = r"epoch +\d+/10  train loss [\d.]+ acc [\d.]+ \| val loss [\d.]+ acc [\d.]+ \| lr 1.0e-03 \| [\d.]+s"
    assert all(re.fullmatch(pattern, ln) for ln in lines), lines[0]
    metrics = json.loads((tmp_path / "mnist" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"]["value"] >= 0.95
    result = cli("evaluate", str(tmp_path / "mnist"), "--split", "test")
    assert result.returncode == 0 and "accuracy" in result.stdout


@pytest.mark.slow  # over 10 s each on the 2-core machine
@pytest.mark.parametrize(("example", "floor"), [("digits_mlp", 0.9), ("breast_cancer_logreg", 0.9)])
def test_other_examples_learn(cli, root, tmp_path, example, floor):
    result = cli(
        "train", str(root / f"examples/{example}.yaml"), "--out", str(tmp_path / example), "-q"
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / example / "metrics.json").read_text())
    assert metrics["test"]["accuracy"]["value"] >= floor


@pytest.mark.slow
def test_digits_front_gives_a_front_of_three_or_more(cli, root, tmp_path):
    out = tmp_path / "front"
    # 19 s on a quiet 2-core machine, 3 min 45 s at a load of 8: a generous limit
    result = cli("tune", str(root / "examples/digits_front.yaml"), "--out", str(out), timeout=900)
    assert result.returncode == 0, result.stderr
    stored = json.loads((out / "result.json").read_text())
    assert sum(stored["counts"].values()) == 30
    front = stored["front"]
    assert len(front) >= 3
    names = list(stored["objectives"])
    assert names == ["val.accuracy", "latency_ms"]
    for a in front:  # non-dominated among themselves
        for b in front:
            if a is not b:
                acc, lat = (b["values"][n] - a["values"][n] for n in names)
                assert not (acc >= 0 and lat <= 0 and (acc > 0 or lat < 0))
    assert "Pareto front (val.accuracy max, latency_ms min)" in result.stdout
    picked = stored["pick"]["trial"]
    assert picked in [f["number"] for f in front] and (out / "best" / "metrics.json").is_file()
    assert 'id="fig-front"' in (out / "report.html").read_text()
