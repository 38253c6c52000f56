"""Mangled specs (property-based): every one ends in a valid Spec or a TunelabError message.

Trees mix the spec's real keys with junk keys and every kind of value (NaN, inf, huge ints,
nested lists, empty strings, booleans); files hold random text or bytes. Nothing may escape as
another exception, and nothing may hang.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunelab.errors import TunelabError
from tunelab.spec import Spec, load_spec

KEYS = [
    "name",
    "seed",
    "data",
    "split",
    "model",
    "train",
    "evaluate",
    "tune",
    "source",
    "path",
    "target",
    "features",
    "test",
    "val",
    "cv",
    "kind",
    "folds",
    "epochs",
    "batch_size",
    "loss",
    "optimizer",
    "lr",
    "betas",
    "schedule",
    "warmup_epochs",
    "augment",
    "padding",
    "p",
    "early_stopping",
    "monitor",
    "hidden",
    "channels",
    "dropout",
    "space",
    "low",
    "high",
    "when",
    "trials",
    "sampler",
    "pruner",
    "objective",
    "metrics",
    "ci",
    "level",
    "target",
    "kwargs",
    "w",
    "n",
    "noise",
    "optimzer",
    "",
    "ü",
    "0",
]
NAMES = [
    "iris",
    "mnist-5k",
    "linear",
    "csv",
    "mlp",
    "cnn",
    "linear",
    "adam",
    "sgd",
    "gd",
    "cosine",
    "crop",
    "tpe",
    "asha",
    "kfold",
    "loo",
    "auto",
    "nope",
    "pkg.mod:Cls",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NAMES),
    st.text(max_size=12),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=5),
    ),
    max_leaves=25,
)
near_valid = st.fixed_dictionaries(
    {
        "data": st.one_of(st.sampled_from(["iris", "linear", "mnist-5k"]), trees),
        "model": st.one_of(st.sampled_from(["mlp", "cnn", "linear"]), trees),
    },
    optional={k: trees for k in ("name", "seed", "split", "train", "evaluate", "tune")},
)


def _outcome(make) -> None:
    try:
        result = make()
    except TunelabError as exc:
        assert str(exc).strip()  # a message a person can read
    else:
        assert isinstance(result, Spec)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(trees, near_valid))
def test_any_tree_gives_a_spec_or_a_message(tree):
    _outcome(lambda: load_spec(tree) if isinstance(tree, dict) else load_spec({"x": tree}))


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid, st.lists(st.tuples(st.sampled_from(KEYS), st.text(max_size=10)), max_size=4))
def test_any_override_gives_a_spec_or_a_message(tree, overrides):
    pairs = [f"train.{k}={v}" if k else v for k, v in overrides]
    _outcome(lambda: load_spec(tree, overrides=pairs))


@settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_file_gives_a_spec_or_a_message(tmp_path, content):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    _outcome(lambda: load_spec(path))


def test_nan_and_inf_values_are_refused_where_they_make_no_sense():
    for bad in (math.nan, math.inf):
        _outcome(
            lambda bad=bad: load_spec({"data": "iris", "model": "mlp", "train": {"epochs": bad}})
        )
