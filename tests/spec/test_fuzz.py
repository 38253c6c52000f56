"""Mangled specs (property-based): every one ends in a valid Spec or a TunelabError message
that names what is wrong: each line of an invalid spec's message names a key of the input (or
a required key it lacks), a bad override is quoted, a bad file is named.

Trees mix the spec's real keys with junk keys and every kind of value (NaN, inf, huge ints,
nested lists, empty strings, booleans); files hold random text or bytes. Nothing may escape as
another exception. A few of the same mistakes go through the real ``tunelab train`` command,
which exits 2 with a one-line message.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tunelab.errors import SpecError, TunelabError
from tunelab.spec import Spec, apply_overrides, load_spec

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


def _segments(path: str) -> list[str | int]:
    """``train.augment[0].p`` -> ["train", "augment", 0, "p"]; ``""`` is an empty key."""
    segments = re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)
    return [int(i) if i else ("" if k == '""' else k) for k, i in segments]


def _names_a_key_of(tree: Any, message: str) -> None:
    """Each line of an ``invalid spec`` message names, in backticks, a key path of ``tree``: a
    path found in it, one under a shorthand string (``data: iris`` is ``data.source``), or a
    required key it lacks (the line says "missing")."""
    assert message.startswith("invalid spec:"), message
    lines = [line.strip() for line in message.removeprefix("invalid spec:").strip().splitlines()]
    assert lines, message
    for line in lines:
        if re.fullmatch(r"\.\.\. and \d+ more", line):
            continue
        named = re.search(r"`([^`]+)`", line)
        assert named, f"this line names no key: {line!r}"
        node = tree
        for seg in _segments(named.group(1)):
            if (
                isinstance(node, dict)
                and seg in node
                or isinstance(node, list)
                and isinstance(seg, int)
                and seg < len(node)
            ):
                node = node[seg]
            elif not isinstance(node, (dict, list)):
                break  # under a shorthand string, expanded by a validator
            else:
                assert "missing" in line, f"{named.group(1)!r} is not in the input: {line!r}"
                break


def _outcome(make, tree: Any) -> None:
    """A Spec, or a SpecError whose message names the key of ``tree`` at fault."""
    try:
        result = make()
    except TunelabError as exc:
        assert isinstance(exc, SpecError), repr(exc)
        _names_a_key_of(tree, str(exc))
    else:
        assert isinstance(result, Spec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(trees, near_valid))
@example({"name": None, "seed": None, "": None})  # an empty key was named `(top level)`
def test_any_tree_gives_a_spec_or_a_message_naming_the_key(tree):
    tree = tree if isinstance(tree, dict) else {"x": tree}
    _outcome(lambda: load_spec(tree), tree)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid, st.lists(st.tuples(st.sampled_from(KEYS), st.text(max_size=10)), max_size=4))
def test_any_override_gives_a_spec_or_a_message_naming_it(tree, overrides):
    pairs = [f"train.{k}={v}" if k else v for k, v in overrides]
    try:
        merged = apply_overrides(tree, pairs)
    except SpecError as exc:  # the override does not apply: it is quoted, or its path named
        message = str(exc)
        named = re.findall(r"`([^`]+)`", message)
        paths = [p.partition("=")[0] for p in pairs]
        assert any(repr(p) in message for p in pairs) or any(
            path == n or path.startswith(n + ".") for n in named for path in paths
        ), message
        return
    _outcome(lambda: load_spec(tree, overrides=pairs), merged)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_file_gives_a_spec_or_a_message_naming_the_file_or_key(tmp_path, content):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    try:
        tree = yaml.safe_load(content)
    except (yaml.YAMLError, ValueError):
        tree = None
    if not isinstance(tree, dict):  # not a mapping: the message is about the file
        with pytest.raises(SpecError) as err:
            load_spec(path)
        assert str(path) in str(err.value) or "a spec is a mapping" in str(err.value)
        return
    _outcome(lambda: load_spec(path), {str(k): v for k, v in tree.items()})


NON_FINITE = [  # (dotted path, a valid value there) where NaN or inf makes no sense
    ("train.epochs", 3),
    ("seed", 1),
    ("train.optimizer.lr", 0.01),
    ("train.grad_clip", 1.0),
    ("model.dropout", 0.5),
    ("split.val", 0.25),
    ("evaluate.ci.level", 0.9),
]


def _with(path: str, value: float) -> dict:
    """An iris spec with ``value`` at ``path`` (the sections on the way written out)."""
    spec: dict = {
        "data": "iris",
        "model": {"name": "mlp"},
        "train": {"optimizer": {"name": "adam"}},
    }
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return spec


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("path, good", NON_FINITE, ids=[p for p, _ in NON_FINITE])
def test_nan_and_inf_values_are_refused_where_they_make_no_sense(path, good, bad):
    assert isinstance(load_spec(_with(path, good)), Spec)  # the same tree, finite, is valid
    spec = _with(path, bad)
    with pytest.raises(SpecError) as err:
        load_spec(spec)
    message = str(err.value)
    assert f"`{path}`" in message and str(bad) in message, message
    _names_a_key_of(spec, message)


@pytest.mark.parametrize(
    "yaml_text, key",
    [
        ("train: {epochs: .nan}", "train.epochs"),
        ("train: {optimizer: {name: adam, lr: .inf}}", "train.optimizer.lr"),
        ("train: {precision: bf61}", "train.precision"),
        ("train: {optimzer: adam}", "train.optimzer"),
    ],
)
def test_the_cli_exits_2_with_a_one_line_message_naming_the_key(cli, tmp_path, yaml_text, key):
    (tmp_path / "spec.yaml").write_text(f"data: iris\nmodel: mlp\n{yaml_text}\n", encoding="utf-8")
    proc = cli("train", "spec.yaml", "--out", "run", timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"`{key}`" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # refused before anything was written
