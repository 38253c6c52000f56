"""The spec tree: defaults, YAML round trip, overrides and the messages of every error."""

from __future__ import annotations

import pytest

from tunelab.errors import SpecError, TunelabError
from tunelab.spec import Spec, apply_overrides, dump_spec, load_spec, parse_spec

BASE = {"data": "iris", "model": "mlp"}
OPTIMIZERS = ["gd", "sgd", "adam", "adamw", "rmsprop", "adagrad", "lbfgs"]
SCHEDULES = ["constant", "linear", "step", "exponential", "cosine", "onecycle", "plateau"]
LOSSES = ["cross_entropy", "mse", "mae", "huber", "bce"]
AUGMENTS = ["crop", "flip", "affine", "noise", "erase"]
MODELS = ["linear", "mlp", "cnn"]
SOURCES = ["mnist-5k", "digits", "iris", "wine", "breast-cancer", "diabetes", "linear"]


def spec_error(*overrides: str, base: dict | None = None) -> str:
    """The message of the SpecError that ``overrides`` on ``base`` raise."""
    with pytest.raises(SpecError) as info:
        load_spec(BASE if base is None else base, overrides=list(overrides))
    assert isinstance(info.value, TunelabError)
    return str(info.value)


# ----------------------------------------------------------------------------------------------
# defaults and round trip


def test_defaults_fill_in():
    spec = load_spec(BASE)
    assert isinstance(spec, Spec)
    assert spec.name == "run" and spec.seed == 0
    assert spec.data.source == "iris" and spec.data.preprocess == "auto"
    assert spec.model.name == "mlp" and spec.model.hidden == [128] and spec.model.dropout == 0.0
    assert spec.split.test == 0.2 and spec.split.val == 0.2 and spec.split.cv is None
    assert spec.split.stratify is None and spec.split.seed is None
    assert spec.train.epochs == 10 and spec.train.batch_size == 64
    assert spec.train.optimizer.name == "adam" and spec.train.optimizer.lr == 1e-3
    assert spec.train.optimizer.betas == (0.9, 0.999)
    assert spec.train.schedule.name == "constant" and spec.train.schedule.warmup_epochs == 0
    assert (
        spec.train.loss is None and spec.train.augment == [] and spec.train.early_stopping is None
    )
    assert spec.evaluate.test is True and spec.tune is None


def test_optimizer_mapping_without_name_defaults_to_adam():
    spec = load_spec({**BASE, "train": {"optimizer": {"lr": 0.5}}})
    assert spec.train.optimizer.name == "adam" and spec.train.optimizer.lr == 0.5


def test_yaml_round_trip_through_a_file(tmp_path):
    spec = load_spec(
        {
            "name": "round-trip",
            "seed": 7,
            "data": {"source": "linear", "w": 3.0, "n": 64},
            "split": {"test": 0.1, "cv": {"kind": "repeated", "folds": 3, "repeats": 2}},
            "model": {"name": "cnn", "blocks": 2, "hidden": 16},
            "train": {
                "optimizer": {"name": "sgd", "momentum": 0.5, "nesterov": True},
                "schedule": {"name": "cosine", "warmup_epochs": 1.5},
                "loss": "huber",
                "augment": ["crop", {"name": "erase", "scale": [0.1, 0.3]}],
                "early_stopping": {"patience": 3},
                "metrics": ["rmse"],
            },
        }
    )
    text = dump_spec(spec)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    again = load_spec(path)
    assert again == spec
    assert load_spec(str(path)) == spec
    assert dump_spec(again) == text
    assert again.train.augment[1].scale == (0.1, 0.3)


def test_load_spec_accepts_a_spec_and_applies_overrides_to_a_copy():
    spec = load_spec(BASE)
    other = load_spec(spec, overrides=["train.epochs=3"])
    assert other.train.epochs == 3 and spec.train.epochs == 10
    assert load_spec(spec) == spec


def test_apply_overrides_leaves_the_input_unchanged():
    raw = {"data": "iris", "model": "mlp", "train": {"augment": ["crop"]}}
    out = apply_overrides(raw, ["train.augment.0.padding=4", "data.preprocess=none"])
    assert raw == {"data": "iris", "model": "mlp", "train": {"augment": ["crop"]}}
    assert out["train"]["augment"] == [{"name": "crop", "padding": 4}]
    assert out["data"] == {"source": "iris", "preprocess": "none"}


# ----------------------------------------------------------------------------------------------
# file errors


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="not found") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(SpecError, match="it is a folder"):
        load_spec(tmp_path)


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="is empty") as info:
        load_spec(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, got", [("- 1\n- 2\n", "list"), ("just words\n", "str")])
def test_file_that_is_not_a_mapping(tmp_path, text, got):
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(SpecError, match="must hold a mapping") as info:
        load_spec(path)
    assert got in str(info.value)


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: iris\nmodel: mlp\ntrain:\n  epochs: 3\n    lr: 2\n")
    with pytest.raises(SpecError, match="not valid YAML at line 5") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_undecodable_file(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec(path)


@pytest.mark.parametrize("source", [None, 3, ["data", "model"]])
def test_source_of_the_wrong_type(source):
    with pytest.raises(SpecError, match="got"):
        load_spec(source)


def test_parse_spec_rejects_a_non_mapping():
    with pytest.raises(SpecError, match="a spec is a mapping"):
        parse_spec([1, 2])


def test_missing_data_and_model():
    message = spec_error(base={})
    assert "missing required key `data`" in message
    assert "missing required key `model`" in message


# ----------------------------------------------------------------------------------------------
# overrides


@pytest.mark.parametrize(
    "override, get, expected",
    [
        ("train.epochs=3", lambda s: s.train.epochs, 3),
        ("train.optimizer.lr=1e-3", lambda s: s.train.optimizer.lr, 1e-3),
        ("train.optimizer.lr=0.25", lambda s: s.train.optimizer.lr, 0.25),
        ("model.hidden=[32, 16]", lambda s: s.model.hidden, [32, 16]),
        ("train.grad_clip=null", lambda s: s.train.grad_clip, None),
        ("train.grad_clip=2", lambda s: s.train.grad_clip, 2.0),
        ("evaluate.test=false", lambda s: s.evaluate.test, False),
        ("model.batch_norm=true", lambda s: s.model.batch_norm, True),
        ("name=my-run.2", lambda s: s.name, "my-run.2"),
        ("train.metrics=[accuracy, f1]", lambda s: s.train.metrics, ["accuracy", "f1"]),
        ("train.early_stopping.patience=2", lambda s: s.train.early_stopping.patience, 2),
    ],
)
def test_overrides_are_yaml_scalars(override, get, expected):
    value = get(load_spec(BASE, overrides=[override]))
    assert value == expected
    assert type(value) is type(expected)


def test_list_index_override():
    spec = load_spec(
        {**BASE, "train": {"augment": ["crop", "flip"]}},
        overrides=["train.augment.0.padding=4", "train.augment.1.p=0.25"],
    )
    assert spec.train.augment[0].name == "crop" and spec.train.augment[0].padding == 4
    assert spec.train.augment[1].name == "flip" and spec.train.augment[1].p == 0.25


def test_negative_list_index_override():
    spec = load_spec(BASE, overrides=["train.augment=[crop, flip]", "train.augment.-1.p=0.1"])
    assert spec.train.augment[1].p == 0.1 and spec.train.augment[0].padding == 2


def test_shorthand_expands_before_a_nested_override():
    spec = load_spec(BASE, overrides=["train.optimizer=sgd", "train.optimizer.momentum=0.5"])
    assert spec.train.optimizer.name == "sgd"
    assert spec.train.optimizer.momentum == 0.5
    assert spec.train.optimizer.lr == 0.01  # sgd's own default, not adam's


def test_shorthand_data_source_expands_to_source():
    spec = load_spec(BASE, overrides=["data=linear", "data.n=40", "data.w=-1.5"])
    assert spec.data.source == "linear" and spec.data.n == 40 and spec.data.w == -1.5


def test_later_override_wins():
    spec = load_spec(BASE, overrides=["train.epochs=3", "train.epochs=5"])
    assert spec.train.epochs == 5


@pytest.mark.parametrize("override", ["train.epochs", "=3", "train..epochs=3", ".epochs=1"])
def test_bad_override_syntax(override):
    message = spec_error(override)
    assert "dotted.path=value" in message and repr(override) in message


def test_override_value_that_is_not_yaml():
    message = spec_error("model.hidden=[1, 2")
    assert "not valid YAML" in message and "model.hidden" in message


def test_override_under_a_value():
    message = spec_error("train.epochs=3", "train.epochs.x=3")
    assert "`train.epochs`" in message


def test_override_index_out_of_range():
    message = spec_error("train.augment=[crop]", "train.augment.3.padding=4")
    assert "`train.augment.3`" in message and "list of 1 item" in message
    assert "0..0" in message


def test_override_non_integer_index():
    message = spec_error("train.augment=[crop]", "train.augment.first.padding=4")
    assert "`train.augment.first`" in message and "'first'" in message


# ----------------------------------------------------------------------------------------------
# unknown keys and names


@pytest.mark.parametrize(
    "override, path, suggestion",
    [
        ("train.optimzer.lr=1", "train.optimzer", "train.optimizer"),
        ("trian.epochs=3", "trian", "train"),
        ("train.epoch=3", "train.epoch", "train.epochs"),
        ("split.cv.kindd=group", "split.cv.kindd", "split.cv.kind"),
        ("model.hiden=[3]", "model.hiden", "model.hidden"),
        (
            "train.early_stopping.patiense=3",
            "train.early_stopping.patiense",
            "train.early_stopping.patience",
        ),
    ],
)
def test_unknown_key_names_full_path_and_suggests_full_path(override, path, suggestion):
    message = spec_error(override)
    assert f"unknown key `{path}`" in message
    assert f"(did you mean `{suggestion}`?)" in message


def test_unknown_key_without_a_close_match_lists_the_valid_keys():
    message = spec_error("train.optimizer.zzz=0.5")
    assert "unknown key `train.optimizer.zzz`" in message and "did you mean" not in message
    assert "valid keys here: name, lr, betas, eps, weight_decay, amsgrad" in message


def test_unknown_key_in_list_item_names_the_index():
    message = spec_error("train.augment=[crop]", "train.augment.0.paddin=4")
    assert "unknown key `train.augment[0].paddin`" in message
    assert "did you mean `train.augment[0].padding`" in message


def test_key_of_another_source_is_unknown():
    message = spec_error("data.n=100")
    assert "unknown key `data.n`" in message


@pytest.mark.parametrize(
    "override, word, valid",
    [
        ("train.optimizer=sgdd", "optimizer 'sgdd'", OPTIMIZERS),
        ("train.schedule=cosin", "schedule 'cosin'", SCHEDULES),
        ("train.loss=crossentropy", "loss 'crossentropy'", LOSSES),
        ("train.augment=[crop, blurr]", "augmentation 'blurr'", AUGMENTS),
        ("model=resnet", "model 'resnet'", MODELS),
        ("data=cifar", "data source 'cifar'", SOURCES),
    ],
)
def test_unknown_names_list_the_valid_ones(override, word, valid):
    message = spec_error(override)
    assert f"unknown {word}" in message
    assert "valid: " + ", ".join(valid) in message


def test_unknown_name_suggests_the_closest():
    assert "(did you mean `sgd`?)" in spec_error("train.optimizer=sgdd")
    assert "(did you mean `cosine`?)" in spec_error("train.schedule=cosin")
    assert "`train.augment[1].name`" in spec_error("train.augment=[crop, blurr]")


def test_section_without_a_name():
    message = spec_error("train.optimizer=5")
    assert "`train.optimizer` needs `name`" in message
    assert ", ".join(OPTIMIZERS) in message


def test_literal_error_names_path_and_options():
    message = spec_error("train.precision=fp16")
    assert "`train.precision`" in message and "'fp16'" in message
    assert "'bf16'" in message and "'fp32'" in message


TUNE = "tune.space={train.optimizer.lr: [0.1]}"


@pytest.mark.parametrize(
    "overrides, path, suggestion",
    [
        (["train.precision=bf61"], "train.precision", "bf16"),
        (["train.device=cpuu"], "train.device", "cpu"),
        (["train.device=cdua"], "train.device", "cuda"),
        (["split.on_duplicates=dorp"], "split.on_duplicates", "drop"),
        (["split.cv.kind=stratifed"], "split.cv.kind", "stratified"),
        (["model.activation=rleu"], "model.activation", "relu"),
        (["data.preprocess=standardise"], "data.preprocess", "standardize"),
        (["data=npz", "data.path=x.npz", "data.task=clasification"], "data.task", "classification"),
        (["train.schedule=plateau", "train.schedule.mode=maks"], "train.schedule.mode", "max"),
        ([TUNE, "tune.direction=maximise"], "tune.direction", "maximize"),
        ([TUNE, "tune.sampler=tpee"], "tune.sampler.name", "tpe"),
    ],
)
def test_a_fixed_choice_field_suggests_the_closest_choice(overrides, path, suggestion):
    message = spec_error(*overrides)
    assert message.startswith(f"invalid spec: `{path}`: expected ")
    assert message.endswith(f"(did you mean `{suggestion}`?)"), message


@pytest.mark.parametrize("override", ["train.precision=zzzz", "train.device=zzzz"])
def test_a_fixed_choice_field_suggests_nothing_when_nothing_is_close(override):
    message = spec_error(override)
    assert "'zzzz'" in message and "did you mean" not in message


@pytest.mark.parametrize("count", [11, 13, 25])
def test_a_long_error_list_shows_ten_and_counts_the_rest(count):
    keys = [f"junk{i:02d}" for i in range(count)]
    with pytest.raises(SpecError) as info:
        load_spec({**BASE, "train": dict.fromkeys(keys, 1)})
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid spec:"
    assert [line.split("`")[1] for line in lines[1:11]] == [f"train.{k}" for k in keys[:10]]
    assert lines[11:] == [f"  ... and {count - 10} more"]


def test_ten_errors_have_no_more_line():
    keys = [f"junk{i}" for i in range(10)]
    with pytest.raises(SpecError) as info:
        load_spec({**BASE, "train": dict.fromkeys(keys, 1)})
    lines = str(info.value).splitlines()
    assert len(lines) == 11 and not any("more" in line for line in lines)


# ----------------------------------------------------------------------------------------------
# ranges


@pytest.mark.parametrize(
    "overrides, path, limit, got",
    [
        (["train.optimizer.lr=-1"], "train.optimizer.lr", "greater than 0", "-1"),
        (["train.epochs=0"], "train.epochs", "greater than or equal to 1", "0"),
        (["model.dropout=1.5"], "model.dropout", "less than 1", "1.5"),
        (["train.optimizer.betas=[0.9, 1.5]"], "train.optimizer.betas[1]", "less than 1", "1.5"),
        (["train.optimizer.betas=[-0.1, 0.9]"], "train.optimizer.betas[0]", "greater", "-0.1"),
        (["train.batch_size=0"], "train.batch_size", "greater than or equal to 1", "0"),
        (["seed=-1"], "seed", "greater than or equal to 0", "-1"),
        (["split.val=1"], "split.val", "less than 1", "1"),
        (["split.test=1.0"], "split.test", "less than 1", "1.0"),
        (["split.test=-0.1"], "split.test", "greater than or equal to 0", "-0.1"),
        (["split.cv=1"], "split.cv.folds", "greater than or equal to 2", "1"),
        (["data=linear", "data.n=3"], "data.n", "greater than or equal to 4", "3"),
        (["data=linear", "data.noise=-1"], "data.noise", "greater than or equal to 0", "-1"),
        (["model=cnn", "model.blocks=7"], "model.blocks", "less than or equal to 6", "7"),
        (["train.augment=[{name: crop, padding: -1}]"], "train.augment[0].padding", "0", "-1"),
        (["train.augment=[{name: flip, p: 2}]"], "train.augment[0].p", "less than or equal", "2"),
        (["train.schedule=step", "train.schedule.gamma=0"], "train.schedule.gamma", "gt", "0"),
        (["train.loss=huber", "train.loss.delta=0"], "train.loss.delta", "greater than 0", "0"),
    ],
)
def test_out_of_range_names_path_limit_and_value(overrides, path, limit, got):
    message = spec_error(*overrides)
    assert f"`{path}`" in message
    if limit != "gt":
        assert limit in message
    assert f"got {got}" in message
    assert "constrained-float" not in message and "literal[" not in message


def test_tuple_that_is_too_short_names_the_missing_item():
    message = spec_error("train.optimizer.betas=[0.9]")
    assert "`train.optimizer.betas[1]`" in message


def test_wrong_type_names_path_and_value():
    message = spec_error("evaluate.test=maybe")
    assert "`evaluate.test`" in message and "'maybe'" in message


def test_name_pattern():
    message = spec_error("name=a b")
    assert "`name`" in message and "'a b'" in message


def test_device_format():
    assert "expected auto, cpu, cuda or cuda:N; got 'gpu'" in spec_error("train.device=gpu")
    assert load_spec(BASE, overrides=["train.device=cuda:1"]).train.device == "cuda:1"


def test_several_errors_are_all_listed():
    message = spec_error("train.epochs=0", "model.dropout=2")
    assert message.startswith("invalid spec:\n")
    assert "`train.epochs`" in message and "`model.dropout`" in message


# ----------------------------------------------------------------------------------------------
# cross-field rules


def test_onecycle_with_warmup():
    message = spec_error("train.schedule=onecycle", "train.schedule.warmup_epochs=1")
    assert "`train.schedule`" in message and "onecycle has its own warm-up" in message
    assert load_spec(BASE, overrides=["train.schedule=onecycle"]).train.schedule.pct_start == 0.3


def test_nesterov_without_momentum():
    message = spec_error(
        "train.optimizer=sgd", "train.optimizer.momentum=0", "train.optimizer.nesterov=true"
    )
    assert "`train.optimizer`" in message and "nesterov needs momentum > 0" in message
    message = spec_error(
        "train.optimizer=sgd", "train.optimizer.dampening=0.1", "train.optimizer.nesterov=true"
    )
    assert "dampening 0" in message


def test_test_source_needs_mnist():
    message = spec_error("split.test=source")
    assert "split.test" in message and "'iris'" in message and "0.2" in message
    spec = load_spec({"data": "mnist", "model": "cnn"}, overrides=["split.test=source"])
    assert spec.split.test == "source"


def test_group_cv_needs_groups():
    message = spec_error("split.cv.kind=group")
    assert "split.cv.kind" in message and "data.groups" in message
    table = {"data": {"source": "csv", "path": "t.csv", "target": "y"}, "model": "mlp"}
    assert "data.groups" in spec_error("split.cv.kind=group", base=table)
    spec = load_spec(table, overrides=["split.cv.kind=group", "data.groups=patient"])
    assert spec.split.cv.kind == "group" and spec.data.groups == "patient"
    npz = {"data": {"source": "npz", "path": "d.npz"}, "model": "mlp"}
    assert load_spec(npz, overrides=["split.cv.kind=group"]).split.cv.kind == "group"


def test_holdout_needs_a_validation_part():
    message = spec_error("split.val=0")
    assert "holdout needs a validation part" in message and "split.cv" in message
    assert load_spec(BASE, overrides=["split.val=0", "split.cv=5"]).split.val == 0


def test_linear_range_order():
    message = spec_error("data=linear", "data.x_low=2")
    assert "x_low must be below x_high" in message and "x_low=2.0" in message


def test_erase_scale_order():
    message = spec_error("train.augment=[{name: erase, scale: [0.5, 0.1]}]")
    assert "`train.augment[0]`" in message and "low <= high" in message


# ----------------------------------------------------------------------------------------------
# cv shorthand and custom models


def test_cv_fold_count_shorthand():
    cv = load_spec(BASE, overrides=["split.cv=5"]).split.cv
    assert cv.kind == "auto" and cv.folds == 5 and cv.shuffle is True


def test_cv_loo_shorthand():
    assert load_spec(BASE, overrides=["split.cv=loo"]).split.cv.kind == "loo"


def test_cv_mapping():
    cv = load_spec(BASE, overrides=["split.cv={kind: repeated, folds: 3, repeats: 4}"]).split.cv
    assert (cv.kind, cv.folds, cv.repeats) == ("repeated", 3, 4)


@pytest.mark.parametrize("value", ["true", "five"])
def test_cv_bad_shorthand(value):
    assert "`split.cv`" in spec_error(f"split.cv={value}")


def test_unknown_cv_kind_lists_kinds():
    message = spec_error("split.cv.kind=shuffle")
    assert "`split.cv.kind`" in message and "'stratified'" in message and "'loo'" in message


@pytest.mark.parametrize("target", ["pkg.models:Net", "my_models:Net", "a.b.c:Outer.Inner"])
def test_custom_model_target(target):
    spec = load_spec({"data": "iris", "model": {"target": target, "kwargs": {"width": 8}}})
    assert spec.model.target == target and spec.model.kwargs == {"width": 8}


@pytest.mark.parametrize("target", ["pkg.models.Net", "pkg/models:Net", ":Net", "pkg:", "1pkg:Net"])
def test_custom_model_bad_target(target):
    message = spec_error(base={"data": "iris", "model": {"target": target}})
    assert "`model.target`" in message and "package.module:Class" in message
    assert repr(target) in message


# ----------------------------------------------------------------------------------------------
# every name builds


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer(name):
    spec = load_spec(BASE, overrides=[f"train.optimizer={name}", "train.optimizer.lr=0.5"])
    assert spec.train.optimizer.name == name and spec.train.optimizer.lr == 0.5


@pytest.mark.parametrize("name", SCHEDULES)
def test_every_schedule(name):
    warmup = [] if name == "onecycle" else ["train.schedule.warmup_epochs=2"]
    spec = load_spec(BASE, overrides=[f"train.schedule={name}", *warmup])
    assert spec.train.schedule.name == name
    assert spec.train.schedule.warmup_epochs == (0 if name == "onecycle" else 2)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss(name):
    assert load_spec(BASE, overrides=[f"train.loss={name}"]).train.loss.name == name


@pytest.mark.parametrize("name", AUGMENTS)
def test_every_augment(name):
    spec = load_spec(BASE, overrides=[f"train.augment=[{name}, {{name: {name}}}]"])
    assert [step.name for step in spec.train.augment] == [name, name]
    assert spec.train.augment[0] == spec.train.augment[1]


@pytest.mark.parametrize("name", MODELS)
def test_every_model(name):
    assert load_spec({"data": "iris", "model": name}).model.name == name


@pytest.mark.parametrize("name", SOURCES)
def test_every_builtin_source(name):
    assert load_spec({"data": name, "model": "mlp"}).data.source == name
