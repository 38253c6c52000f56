"""Token-id sequences: int64 from the featurizer to the model, each batch (training, every
rank's share under DDP, evaluation) cut to its own longest sequence, and a fixed-width model
refused for them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tunelab
from tunelab.data import fit_part
from tunelab.spec import load_spec
from tunelab.train import prepare
from tunelab.train._batches import batches_of
from tunelab.train._fit import predict
from tunelab.train._ranks import Ranks


@pytest.fixture
def news(tmp_path):
    """Two topics of texts from 1 to 30 words, so that batches differ in their longest."""
    rng = np.random.default_rng(0)
    words = {"money": "bank shares market profit", "sport": "match goal team league"}
    root = tmp_path / "news"
    for topic, vocab in words.items():
        (root / topic).mkdir(parents=True)
        for i in range(40):
            text = " ".join(rng.choice(vocab.split(), int(rng.integers(1, 31))).tolist())
            (root / topic / f"{i:02d}.txt").write_text(text, encoding="utf-8")
    return root


def _spec(folder, model=None, **train):
    return load_spec(
        {
            "seed": 0,
            "data": {
                "source": "text-folder",
                "path": str(folder),
                "featurize": {"kind": "tokens", "min_count": 1, "max_length": 24},
            },
            "model": model or {"name": "textcnn", "vocab": 16, "embed": 8, "maps": 4},
            "train": {"epochs": 1, "batch_size": 8} | train,
            "evaluate": {"ci": {"resamples": 0}},
        }
    )


def _longest(xb: torch.Tensor) -> int:
    real = (xb != 0).any(dim=0).nonzero()
    return int(real.max()) + 1 if len(real) else 0


def test_ids_stay_int64_and_every_batch_is_cut_to_its_longest(news):
    prep = prepare(_spec(news))
    idx = prep.splits.folds[0].train
    stats = fit_part(prep.ds, idx, prep.spec.data.preprocess)
    X = prep.inputs(idx, stats)
    assert X.dtype == torch.int64 and stats.kind == "none"  # codes: never cast nor scaled
    assert X.shape[1] == 24  # the longest text (30 words) truncated to max_length
    y = prep.y[torch.as_tensor(idx)]
    batches = batches_of((X, y), prep.plan, torch.Generator().manual_seed(0))
    order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(0))
    widths = []
    for (xb, yb), rows in zip(batches.epoch(), batches.slices(order), strict=True):
        assert xb.dtype == torch.int64 and xb.shape[1] == max(1, _longest(xb))
        full = X[rows]  # the same samples, nothing of them lost by the cut
        assert torch.equal(full[:, : xb.shape[1]], xb) and not full[:, xb.shape[1] :].any()
        assert torch.equal(yb, y[rows])
        widths.append(xb.shape[1])
    assert min(widths) < 24  # some batch is shorter than the longest text


def test_each_rank_cuts_its_own_share(news):
    prep = prepare(_spec(news))
    idx = prep.splits.folds[0].train
    X = prep.inputs(idx, fit_part(prep.ds, idx, prep.spec.data.preprocess))
    y = prep.y[torch.as_tensor(idx)]
    shares = [
        list(batches_of((X, y), prep.plan, torch.Generator().manual_seed(3), Ranks(r, 2)).epoch())
        for r in range(2)
    ]
    whole = list(batches_of((X, y), prep.plan, torch.Generator().manual_seed(3)).epoch())
    for (a, ya), (b, yb), (xw, yw) in zip(*shares, whole, strict=True):
        assert a.shape[1] == max(1, _longest(a)) and b.shape[1] == max(1, _longest(b))
        assert torch.equal(torch.cat([ya, yb]), yw)
        width = xw.shape[1]
        padded = [torch.nn.functional.pad(t, (0, width - t.shape[1])) for t in (a, b)]
        assert torch.equal(torch.cat(padded), xw)


def test_evaluation_in_cut_batches_equals_the_padded_whole(news):
    prep = prepare(_spec(news))
    idx = np.arange(len(prep.ds))
    X = prep.inputs(idx, fit_part(prep.ds, idx, prep.spec.data.preprocess))
    torch.manual_seed(0)
    from tunelab.models import build_model

    model = build_model(prep.spec.model, in_shape=(24,), out_features=2).eval()
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    with torch.no_grad():
        out = predict(model, X, batch_size=8)
        seen_batches, seen[:] = list(seen), []
        whole = model(X)
    assert len(set(seen_batches)) > 1 and max(seen_batches) <= 24
    torch.testing.assert_close(out, whole, rtol=1e-5, atol=1e-6)


def test_a_fixed_width_model_is_refused_for_token_ids(news, tmp_path):
    spec = _spec(news, model={"name": "mlp", "hidden": [8]})
    with pytest.raises(tunelab.SpecError, match=r"model mlp takes fixed-width.*textcnn"):
        tunelab.train(spec, out=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def _padding(batches) -> int:
    return sum(int((xb == 0).sum()) for xb, _ in batches.epoch())


def test_length_buckets_pad_less_and_still_see_every_sample_once(news):
    plain, bucketed = prepare(_spec(news)), prepare(_spec(news, bucket=4))
    idx = plain.splits.folds[0].train
    X = plain.inputs(idx, fit_part(plain.ds, idx, plain.spec.data.preprocess))
    y = torch.arange(len(idx))  # each sample's position, to follow it through the order

    def batches(prep, seed=0):
        return batches_of((X, y), prep.plan, torch.Generator().manual_seed(seed))

    seen = torch.cat([yb for _, yb in batches(bucketed).epoch()])
    assert sorted(seen.tolist()) == list(range(len(idx)))  # once each, nothing dropped
    assert _padding(batches(bucketed)) < _padding(batches(plain)) / 2
    again = [yb.tolist() for _, yb in batches(bucketed).epoch()]
    assert again == [yb.tolist() for _, yb in batches(bucketed).epoch()]  # seeded
    other = [yb.tolist() for _, yb in batches(bucketed, seed=1).epoch()]
    assert other != again
    first = [yb.tolist() for _, yb in batches(bucketed).epoch()]
    lengths = [(X[yb] != 0).sum(1).max().item() for yb in map(torch.tensor, first[:-1])]
    assert lengths != sorted(lengths)  # the batches themselves are shuffled, not short-first


def test_a_bucketed_textcnn_run_trains(news, tmp_path):
    spec = _spec(news, bucket=4, epochs=4, optimizer={"name": "adam", "lr": 0.01})
    run = tunelab.train(spec, out=tmp_path / "run", quiet=True)
    assert run.metrics["test"]["accuracy"]["value"] > 0.8


@pytest.mark.slow  # a study: two trials under 3-fold CV, then the refit
def test_a_textcnn_study_with_cv_and_buckets_refits_and_predicts(news, tmp_path):
    spec = _spec(news, bucket=2, epochs=3, optimizer={"name": "adam", "lr": 0.01})
    tree = spec.model_dump(mode="json", exclude_unset=True) | {
        "split": {"test": 0.2, "cv": 3},
        "tune": {
            "trials": 2,
            "sampler": "random",
            "pruner": "none",
            "objective": "val.accuracy",
            "space": {"model.maps": [4, 8]},
        },
    }
    result = tunelab.tune_study(tree, out=tmp_path / "study", quiet=True)
    assert result.test_metrics["accuracy"]["value"] > 0.8
    best = tunelab.load_run(tmp_path / "study" / "best")
    assert best.predict(["bank shares market profit bank"]).labels.tolist() == ["money"]
