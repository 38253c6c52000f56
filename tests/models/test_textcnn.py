"""The word vocabulary (fitted on training texts only) and the ``textcnn`` model: shapes,
padding that never changes an output, the max-norm constraint, and a run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import tunelab
from tunelab.data import texts_frame
from tunelab.data._featurize import OOV, PAD, TextFeaturizer, TokensOptions
from tunelab.models import build_model
from tunelab.spec import load_spec


def _vocab(texts, **options):
    return TextFeaturizer(TokensOptions(kind="tokens", **options)).fit(texts_frame(np.array(texts)))


def test_vocabulary_ids_padding_unknown_and_truncation():
    vocab = _vocab(["The cat sat", "the cat ran", "a dog"], min_count=2, max_length=5)
    assert vocab.words == ["cat", "the"]  # most frequent first, ties alphabetical; "a" once
    ids, unknown = vocab.transform(texts_frame(np.array(["THE cat flew", "cat " * 9])))
    assert unknown == {} and ids.dtype == np.int64
    assert ids[0].tolist() == [3, 2, OOV, PAD, PAD]  # the=3, cat=2 (ids start at 2)
    assert ids[1].tolist() == [2] * 5  # truncated to max_length
    assert _vocab(["a b c d"], min_count=1, max_size=2).words == ["a", "b"]
    again = type(vocab).from_json(json.loads(json.dumps(vocab.to_json())))
    assert again.transform(texts_frame(np.array(["the cat"])))[0][0].tolist() == [3, 2]
    assert again.words == vocab.words and again.options == vocab.options


def _model(**options):
    spec = load_spec(
        {
            "data": {"source": "iris"},
            "model": {"name": "textcnn", "vocab": 50, "embed": 8, "maps": 4} | options,
        }
    )
    torch.manual_seed(0)
    return build_model(spec.model, in_shape=(12,), out_features=3).eval()


def test_textcnn_shapes_and_padding_never_changes_the_output():
    model = _model()
    ids = torch.tensor([[5, 9, 3, 7, 2, 0, 0, 0, 0, 0, 0, 0], [4, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    out = model(ids.float())
    assert out.shape == (2, 3)
    longer = torch.cat([ids, torch.zeros(2, 8, dtype=ids.dtype)], dim=1).float()
    assert torch.allclose(model(longer), out, atol=1e-6)
    convs = model.net.convs
    assert [c.kernel_size[0] for c in convs] == [3, 4, 5] and all(
        c.out_channels == 4 for c in convs
    )
    assert model(torch.full((1, 12), 999.0)).shape == (1, 3)  # ids beyond vocab: unknown


def test_textcnn_max_norm_bounds_each_class_weight():
    model = _model(max_norm=0.5)
    with torch.no_grad():
        model.net.fc.parametrizations.weight.original.mul_(100)
    assert model.net.fc.weight.norm(dim=1).max() <= 0.5 + 1e-6


def test_textcnn_trains_on_word_ids_and_predicts(tmp_path):
    rng = np.random.default_rng(0)
    topics = {"money": "bank shares market profit", "sport": "match goal team league"}
    for topic, words in topics.items():
        (tmp_path / "news" / topic).mkdir(parents=True)
        for i in range(20):
            text = " ".join(rng.choice(words.split() + ["the", "news"], 5).tolist())
            (tmp_path / "news" / topic / f"{i}.txt").write_text(text, encoding="utf-8")
    featurize = {"kind": "tokens", "min_count": 1, "max_length": 12}
    spec = {
        "seed": 0,
        "data": {"source": "text-folder", "path": str(tmp_path / "news"), "featurize": featurize},
        "model": {"name": "textcnn", "vocab": 64, "embed": 16, "maps": 8},
        "train": {"epochs": 8, "batch_size": 8, "optimizer": {"name": "adam", "lr": 0.01}},
        "evaluate": {"ci": {"resamples": 0}},
    }
    run = tunelab.train(spec, out=tmp_path / "run", quiet=True)
    assert run.metrics["test"]["accuracy"]["value"] > 0.8
    state = json.loads((run.path / "preprocess.json").read_text())["featurizer"]
    assert state["kind"] == "tokens" and set(state["words"]) <= {
        *" ".join(topics.values()).split(),
        "the",
        "news",
    }
    assert run.predict(["bank shares market profit"]).labels.tolist() == ["money"]


def test_tokens_refuse_standardized_ids():
    with pytest.raises(tunelab.SpecError, match="word ids are never standardised"):
        load_spec(
            {
                "data": {
                    "source": "bbc-news",
                    "featurize": {"kind": "tokens"},
                    "preprocess": "standardize",
                },
                "model": {"name": "textcnn"},
            }
        )
