"""`tunelab compress`: every variant a run folder, measured the same way against the original."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import tunelab
from tunelab.compress import compress_run, parse_methods
from tunelab.compress._compress import _source
from tunelab.errors import DataError, RunError, SpecError
from tunelab.train import Console, Predictor, prepare

QUIET = {"console": Console(quiet=True, file=io.StringIO())}
DIGITS = {
    "name": "digits_compress",
    "seed": 0,
    "data": {"source": "digits"},
    "split": {"test": 0.2, "val": 0.2},
    "model": {"name": "mlp", "hidden": [64]},
    "train": {"epochs": 6, "batch_size": 32, "optimizer": {"name": "adam", "lr": 0.01}},
}
FAST = dict(n_threads=1, repeats=3)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    return tunelab.train(DIGITS, out=tmp_path_factory.mktemp("digits") / "run", **QUIET)


@pytest.fixture(scope="module")
def compressed(digits_run, tmp_path_factory):
    methods = ["onnx", "onnx-int8", "onnx-int8-static:128", "torch-int8", "prune:0.5", "fp16"]
    out = tmp_path_factory.mktemp("variants") / "out"
    return compress_run(digits_run, methods, out=out, **FAST)


def test_every_variant_is_measured_and_written_as_a_run(compressed, digits_run):
    labels = [r.label for r in compressed.rows]
    assert labels == [
        "original",
        "onnx",
        "onnx-int8",
        "onnx-int8-static128",
        "torch-int8",
        "prune0.5",
        "fp16",
    ]
    doc = json.loads((compressed.out / "compression.json").read_text())
    assert [v["label"] for v in doc["variants"]] == labels
    assert doc["threads"] == 1 and doc["batches"] == [1, 256]
    base = compressed.rows[0]
    assert base.size_bytes == (digits_run.path / "model.safetensors").stat().st_size
    for row in compressed.rows[1:]:
        folder = compressed.out / row.label
        files = [folder / f for f in row.files]
        assert row.size_bytes == sum(f.stat().st_size for f in files) > 0
        assert set(row.latency_ms) == {"1", "256"} and all(v > 0 for v in row.latency_ms.values())
        acc = row.test["accuracy"]
        assert 0.8 < acc["value"] <= 1 and acc["ci"]["low"] <= acc["value"] <= acc["ci"]["high"]
        assert row.comparison["test"] == "McNemar" and 0 <= row.comparison["p_value"] <= 1
        assert row.verdict.startswith(f"{row.label}: ") and "McNemar p = " in row.verdict
        # a variant is a run: predict reads it back and gives its saved test scores exactly
        variant = tunelab.load_run(folder)
        saved = variant.predictions()
        X = tunelab.data.load_dataset(variant.spec.data, seed=0).X[saved["test_index"]]
        assert np.array_equal(variant.predict(X).scores, saved["test_score"])


def test_sizes_and_parameters_say_what_each_method_did(compressed):
    rows = {r.label: r for r in compressed.rows}
    base = rows["original"]
    assert rows["fp16"].size_bytes < 0.6 * base.size_bytes  # 2 bytes a weight instead of 4
    assert rows["torch-int8"].size_bytes < 0.45 * base.size_bytes  # int8 + a scale per row
    assert rows["onnx-int8"].size_bytes < rows["onnx"].size_bytes
    # global magnitude pruning of half the conv/linear weights: half of them are zero
    weights = 64 * 64 + 64 * 10
    zeroed = base.nonzero_parameters - rows["prune0.5"].nonzero_parameters
    assert zeroed == pytest.approx(weights / 2, abs=2)
    assert rows["onnx"].onnx_max_abs_diff < 1e-4  # fp32 ONNX is the same function
    assert rows["onnx"].test["accuracy"]["value"] == base.test["accuracy"]["value"]
    assert rows["onnx-int8"].onnx_max_abs_diff > 0  # int8 is not


def test_static_quantization_calibrates_on_training_rows_only(digits_run, tmp_path):
    prep = prepare(digits_run.spec, splits=digits_run.splits)
    ((label, options, _),) = parse_methods(["onnx-int8-static"])
    source = _source(
        digits_run, prep, Predictor(digits_run, device="cpu"), tmp_path, label, options
    )
    flat = prep.X.reshape(len(prep.X), -1).cpu().numpy()
    rows = {flat[i].tobytes(): i for i in range(len(flat))}
    picked = [rows[x.tobytes()] for x in source.example.reshape(len(source.example), -1).numpy()]
    train = set(prep.splits.folds[0].train.tolist())
    assert len(picked) == min(512, len(train)) and set(picked) <= train


def test_each_variants_test_look_is_logged_in_the_studys_seal(tmp_path):
    spec = DIGITS | {
        "train": DIGITS["train"] | {"epochs": 2},
        "tune": {"sampler": "random", "pruner": "none", "trials": 1,
                 "space": {"train.optimizer.lr": [0.01]}},
    }  # fmt: skip
    result = tunelab.tune_study(spec, out=tmp_path / "study", quiet=True)
    seal = tmp_path / "study" / "seal.json"
    before = len(json.loads(seal.read_text())["evaluations"])
    compress_run(result.path / "best", ["onnx", "fp16"], out=tmp_path / "study" / "small", **FAST)
    looks = json.loads(seal.read_text())["evaluations"]
    assert len(looks) == before + 2
    assert {Path(e["run"]).name for e in looks[-2:]} == {"onnx", "fp16"}


def test_bad_methods_and_tampered_runs_are_refused_before_anything_is_written(digits_run, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(
        SpecError, match=r"unknown compression 'onnx-int9'.*did you mean `onnx-int8`"
    ):
        compress_run(digits_run, ["onnx-int9"], out=out)
    with pytest.raises(SpecError, match=r"no option 'fintune'.*did you mean `finetune`"):
        compress_run(digits_run, ["prune:0.5+fintune:2"], out=out)
    with pytest.raises(SpecError, match="amount"):
        compress_run(digits_run, ["prune:1.5"], out=out)
    linear = tunelab.train(DIGITS | {"model": {"name": "linear"}}, out=tmp_path / "linear", **QUIET)
    with pytest.raises(SpecError, match="keeps the output layer whole"):
        compress_run(linear, ["prune-channels"], out=out)
    assert not out.exists()

    tampered = tmp_path / "tampered"
    shutil.copytree(digits_run.path, tampered)
    splits = json.loads((tampered / "splits.json").read_text())
    splits["test"]["indices"] = splits["test"]["indices"][1:] + [splits["test"]["indices"][0]]
    splits["test"]["fingerprint"] = splits["test"]["fingerprint"][::-1]
    (tampered / "splits.json").write_text(json.dumps(splits))
    with pytest.raises((DataError, RunError), match="fingerprint|changed|differ"):
        compress_run(tampered, ["onnx"], out=out)
    (tampered / "model.safetensors").write_bytes(b"\x80\x04 not safetensors")
    with pytest.raises(RunError, match="not a valid safetensors"):
        compress_run(tampered, ["onnx"], out=out)
    assert not out.exists()


@pytest.mark.slow
def test_cli_compress_prints_the_table_and_verdicts(digits_run, tmp_path, cli):
    out = tmp_path / "cli"
    done = cli(
        "compress", str(digits_run.path), "-m", "onnx-int8", "-m", "bf16", "--threads", "1",
        "--repeats", "3", "-o", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "onnx-int8: " in done.stdout and "bf16: " in done.stdout
    assert "accuracy" in done.stdout and "1 CPU thread(s)" in done.stdout
    assert f"report: {out / 'report.html'}" in done.stdout
    assert done.stderr.strip() == ""  # no exporter or torchao chatter
    p = tmp_path / "p.csv"
    np.savez(tmp_path / "new.npz", X=np.zeros((3, 8, 8), np.float32))
    assert (
        cli("predict", str(out / "onnx-int8"), str(tmp_path / "new.npz"), "-o", str(p)).returncode
        == 0
    )
    assert len(p.read_text().splitlines()) == 4
    bad = cli("compress", str(digits_run.path), "-m", "prune-chanels", "-o", str(out))
    assert bad.returncode == 2 and "did you mean `prune-channels`" in bad.stderr


def test_a_torch_int8_variant_is_restored_exactly(compressed, digits_run):
    folder = compressed.out / "torch-int8"
    stored = Predictor(tunelab.load_run(folder), device="cpu")
    X = torch.randn(16, 1, 8, 8)
    again = Predictor(tunelab.load_run(folder), device="cpu")
    assert torch.equal(stored.model(X), again.model(X))
    with torch.no_grad():
        original = Predictor(digits_run, device="cpu").model(X)
    with torch.no_grad():
        assert 0 < float((stored.model(X) - original).abs().max()) < 0.5


@pytest.mark.slow
def test_the_textbook_cnn_onnx_is_torch_and_int8_is_smaller_within_the_ci(tmp_path):
    spec = {
        "name": "mnist_compress",
        "seed": 0,
        "data": {"source": "mnist-5k"},
        "split": {"test": 0.2, "val": 0.1},
        "model": {"name": "cnn"},
        "train": {"epochs": 3, "batch_size": 100, "optimizer": {"name": "adam", "lr": 1e-3}},
    }
    run = tunelab.train(spec, out=tmp_path / "run", **QUIET)
    methods = ["onnx", "onnx-int8", "onnx-int8+conv:true"]
    result = compress_run(run, methods, out=tmp_path / "out", **FAST)
    base, onnx, int8, with_conv = result.rows
    assert onnx.onnx_max_abs_diff < 1e-4  # the whole test part, 1,000 images
    assert int8.size_bytes < 0.5 * base.size_bytes
    ci = base.test["accuracy"]["ci"]
    assert ci["low"] <= int8.test["accuracy"]["value"] <= ci["high"]
    assert int8.comparison["p_value"] > 0.05
    import onnx as onnx_lib

    def ops(label):
        return {n.op_type for n in onnx_lib.load(str(result.out / label / "model.onnx")).graph.node}

    # by default only the matrix products are int8; the convolution stays fp32
    assert "MatMulInteger" in ops("onnx-int8") and "ConvInteger" not in ops("onnx-int8")
    assert with_conv.label == "onnx-int8+convtrue" and "ConvInteger" in ops(with_conv.label)


def test_conv_is_an_option_of_dynamic_int8_only():
    assert parse_methods(["onnx-int8+conv:true"])[0][1].conv is True
    for name, why in [("onnx-int8-static", "quantizes every layer"), ("onnx", "is fp32")]:
        with pytest.raises(SpecError, match=f"conv applies to onnx-int8 only .{name} {why}"):
            parse_methods([f"{name}+conv:true"])


def test_pareto_front_is_the_non_dominated_points():
    from tunelab.report._compression import pareto

    # (accuracy: higher better, latency: lower better)
    points = [(0.95, 1.0), (0.94, 0.5), (0.93, 0.6), (0.95, 1.2), (0.90, 0.4)]
    assert pareto(points) == [True, True, False, False, True]
    assert pareto([(0.9, 1.0), (0.9, 1.0)]) == [True, True]  # equal points dominate neither


def test_the_compression_report_shows_every_variant_and_both_fronts(compressed):
    from tunelab.report import write_report

    page = write_report(compressed.out).read_text()
    for row in compressed.rows:
        assert f"<td>{row.label}</td>" in page
    assert page.count('data-figure="latency"') == 1 and page.count('data-figure="size"') == 1
    assert page.count("<svg") >= 2 and "Pareto front" in page
    assert compressed.rows[1].verdict in page


def test_a_table_encoded_per_training_part_compresses_and_its_variants_predict(tmp_path, penguins):
    import pandas as pd

    penguins().to_csv(tmp_path / "penguins.csv", index=False)
    spec = DIGITS | {
        "name": "penguins_compress",
        "data": {"source": "csv", "path": str(tmp_path / "penguins.csv"), "target": "species"},
        "model": {"name": "mlp", "hidden": [16]},
    }
    run = tunelab.train(spec, out=tmp_path / "run", **QUIET)
    result = compress_run(run, ["fp16", "prune:0.5"], out=tmp_path / "out", **FAST)
    frame = pd.read_csv(tmp_path / "penguins.csv")
    original = next(r for r in result.rows if r.label == "original")
    assert original.test["accuracy"]["value"] == run.metrics["test"]["accuracy"]["value"]
    for row in (r for r in result.rows if r.label != "original"):
        variant = tunelab.load_run(row.folder)
        saved = variant.predictions()
        got = Predictor(variant).predict(frame.iloc[saved["test_index"]]).scores
        assert np.array_equal(got, saved["test_score"])
        state = json.loads((variant.path / "preprocess.json").read_text())["featurizer"]
        assert state["columns"]["categorical"] == ["island", "sex"]
