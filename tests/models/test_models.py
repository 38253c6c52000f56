"""Built-in architectures, the Normalize layer and user models loaded by import path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import tunelab
from tunelab.errors import SpecError
from tunelab.models import BUILTIN_MODELS, Normalize, build_model, import_model_class

HERE = Path(__file__).parent


def model_spec(model, data="iris"):
    return tunelab.load_spec({"data": data, "model": model}).model


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layer_types(module: nn.Module) -> list[type]:
    return [type(m) for m in module]


@pytest.fixture
def usermodels(monkeypatch):
    """The helper module's folder on sys.path, as a user's package would be."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delitem(sys.modules, "usermodels", raising=False)
    import usermodels

    usermodels.RECEIVED.clear()
    return usermodels


# ---------------------------------------------------------------------------------------------
# cnn


def test_textbook_cnn_layers_and_parameter_count():
    model = build_model(model_spec("cnn"), in_shape=(1, 28, 28), out_features=10)
    net = model.net
    assert list(model._modules) == ["net"]  # no statistics given: no Normalize layer
    assert layer_types(net) == [nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear]
    conv, linear = net[0], net[4]
    assert (conv.in_channels, conv.out_channels) == (1, 32)
    assert conv.kernel_size == (3, 3) and conv.padding == (1, 1)
    assert net[2].kernel_size == 2
    assert (linear.in_features, linear.out_features) == (32 * 14 * 14, 10)
    assert n_params(model) == (32 * 9 + 32) + (32 * 14 * 14 * 10 + 10) == 63050
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


@pytest.mark.parametrize(
    "in_shape, flat",
    [((3, 32, 32), 32 * 16 * 16), ((1, 8, 8), 32 * 4 * 4), ((2, 9, 13), 32 * 4 * 6)],
)
def test_cnn_flatten_size_comes_from_the_input_shape(in_shape, flat):
    model = build_model(model_spec("cnn"), in_shape=in_shape, out_features=4)
    assert model.net[0].in_channels == in_shape[0]
    assert model.net[-1].in_features == flat
    assert model(torch.randn(3, *in_shape)).shape == (3, 4)


def test_cnn_blocks_double_the_channels():
    spec = model_spec({"name": "cnn", "blocks": 3, "channels": 4, "kernel_size": 5})
    model = build_model(spec, in_shape=(1, 16, 16), out_features=3)
    convs = [m for m in model.net if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 4), (4, 8), (8, 16)]
    assert all(c.kernel_size == (5, 5) and c.padding == (2, 2) for c in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.net) == 3
    assert model.net[-1].in_features == 16 * 2 * 2
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 3)


def test_cnn_batch_norm_hidden_dropout_and_activation():
    spec = model_spec(
        {
            "name": "cnn",
            "blocks": 2,
            "channels": 8,
            "batch_norm": True,
            "hidden": 20,
            "dropout": 0.25,
            "activation": "gelu",
        }
    )
    model = build_model(spec, in_shape=(3, 12, 12), out_features=5)
    types = layer_types(model.net)
    assert types == [
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.GELU,
        nn.MaxPool2d,
        nn.Conv2d,
        nn.BatchNorm2d,
        nn.GELU,
        nn.MaxPool2d,
        nn.Flatten,
        nn.Dropout,
        nn.Linear,
        nn.GELU,
        nn.Dropout,
        nn.Linear,
    ]
    assert [m.num_features for m in model.net if isinstance(m, nn.BatchNorm2d)] == [8, 16]
    hidden, out = [m for m in model.net if isinstance(m, nn.Linear)]
    assert (hidden.in_features, hidden.out_features) == (16 * 3 * 3, 20)
    assert (out.in_features, out.out_features) == (20, 5)
    assert all(m.p == 0.25 for m in model.net if isinstance(m, nn.Dropout))
    model.eval()
    assert model(torch.randn(4, 3, 12, 12)).shape == (4, 5)


def test_cnn_max_blocks_for_8x8_and_one_too_many():
    ok = build_model(model_spec({"name": "cnn", "blocks": 3}), in_shape=(1, 8, 8), out_features=2)
    assert ok.net[-1].in_features == 128 * 1 * 1
    with pytest.raises(SpecError, match=r"model.blocks is 4.*8x8.*at most 3 block"):
        build_model(model_spec({"name": "cnn", "blocks": 4}), in_shape=(1, 8, 8), out_features=2)


def test_cnn_on_tabular_data_points_to_mlp():
    with pytest.raises(SpecError, match=r"\(C, H, W\).*\(4,\).*mlp"):
        build_model(model_spec("cnn"), in_shape=(4,), out_features=3)


# ---------------------------------------------------------------------------------------------
# mlp and linear


def test_mlp_default_is_one_hidden_layer_of_128():
    model = build_model(model_spec("mlp"), in_shape=(4,), out_features=3)
    assert layer_types(model.net) == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]
    assert n_params(model) == (4 * 128 + 128) + (128 * 3 + 3)


def test_mlp_hidden_activation_dropout_batch_norm():
    spec = model_spec(
        {"name": "mlp", "hidden": [16, 8], "activation": "tanh", "dropout": 0.5, "batch_norm": True}
    )
    model = build_model(spec, in_shape=(1, 8, 8), out_features=10)
    assert layer_types(model.net) == [
        nn.Flatten,
        nn.Linear,
        nn.BatchNorm1d,
        nn.Tanh,
        nn.Dropout,
        nn.Linear,
        nn.BatchNorm1d,
        nn.Tanh,
        nn.Dropout,
        nn.Linear,
    ]
    widths = [(m.in_features, m.out_features) for m in model.net if isinstance(m, nn.Linear)]
    assert widths == [(64, 16), (16, 8), (8, 10)]
    model.eval()
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("relu", nn.ReLU),
        ("gelu", nn.GELU),
        ("tanh", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
        ("leaky_relu", nn.LeakyReLU),
        ("silu", nn.SiLU),
        ("elu", nn.ELU),
    ],
)
def test_every_activation(name, cls):
    model = build_model(
        model_spec({"name": "mlp", "hidden": [3], "activation": name}),
        in_shape=(2,),
        out_features=1,
    )
    assert isinstance(model.net[2], cls)


def test_linear_with_and_without_bias():
    model = build_model(model_spec("linear"), in_shape=(1, 8, 8), out_features=10)
    assert layer_types(model.net) == [nn.Flatten, nn.Linear]
    assert n_params(model) == 64 * 10 + 10
    no_bias = build_model(
        model_spec({"name": "linear", "bias": False}), in_shape=(3,), out_features=1
    )
    assert no_bias.net[1].bias is None and n_params(no_bias) == 3


def test_builtin_registry_covers_linear_mlp_cnn_textcnn_encoder():
    assert sorted(fn.__name__ for fn in BUILTIN_MODELS.values()) == [
        "cnn",
        "encoder",
        "linear",
        "mlp",
        "textcnn",
    ]


# ---------------------------------------------------------------------------------------------
# Normalize


def test_normalize_layer_applies_the_given_statistics():
    mean = np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 3)
    std = np.array([2.0, 4.0, 0.5], np.float32).reshape(1, 3)
    model = build_model(model_spec("linear"), in_shape=(3,), out_features=1, mean=mean, std=std)
    assert list(model._modules) == ["norm", "net"]
    assert isinstance(model.norm, Normalize)
    x = torch.tensor([[3.0, 6.0, 3.5], [1.0, 2.0, 3.0]])
    torch.testing.assert_close(model.norm(x), torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))
    # the statistics are buffers: saved with the weights, not trained
    assert {"norm.mean", "norm.std"} <= set(model.state_dict())
    assert all(not name.startswith("norm.") for name, _ in model.named_parameters())
    torch.testing.assert_close(model(x), model.net(model.norm(x)))


def test_normalize_per_channel_broadcasts_over_images():
    norm = Normalize(
        torch.tensor([0.5, -1.0]).reshape(1, 2, 1, 1), torch.tensor([0.5, 2.0]).reshape(1, 2, 1, 1)
    )
    x = torch.ones(2, 2, 3, 3)
    out = norm(x)
    assert torch.all(out[:, 0] == 1.0) and torch.all(out[:, 1] == 1.0)
    assert norm.mean.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# user models


def test_user_model_gets_kwargs_and_declared_data_params(usermodels):
    spec = model_spec({"target": "usermodels:TwoLayer", "kwargs": {"width": 5}})
    model = build_model(spec, in_shape=(1, 8, 8), out_features=10, num_classes=10)
    assert usermodels.RECEIVED["TwoLayer"] == {"in_features": 64, "num_classes": 10, "width": 5}
    assert isinstance(model.net, usermodels.TwoLayer)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_user_model_only_declared_data_params_are_passed(usermodels):
    build_model(model_spec({"target": "usermodels:ShapeOnly"}), in_shape=(2, 3), out_features=4)
    assert usermodels.RECEIVED["ShapeOnly"] == {"in_shape": (2, 3), "out_features": 4}
    spec = model_spec({"target": "usermodels:NoDataParams", "kwargs": {"scale": 2.5}})
    build_model(spec, in_shape=(5,), out_features=1, num_classes=None)
    assert usermodels.RECEIVED["NoDataParams"] == {"scale": 2.5}


def test_user_model_with_var_kwargs_gets_every_known_data_param(usermodels):
    spec = model_spec({"target": "usermodels:TakesAny", "kwargs": {"extra": 1}})
    build_model(spec, in_shape=(4,), out_features=3, num_classes=3)
    assert usermodels.RECEIVED["TakesAny"] == {
        "in_shape": (4,),
        "in_features": 4,
        "num_classes": 3,
        "out_features": 3,
        "extra": 1,
    }
    # num_classes is None for regression: not passed at all
    build_model(spec, in_shape=(4,), out_features=1, num_classes=None)
    assert "num_classes" not in usermodels.RECEIVED["TakesAny"]


def test_user_model_nested_class(usermodels):
    model = build_model(
        model_spec({"target": "usermodels:Nested.Inner"}), in_shape=(3,), out_features=2
    )
    assert isinstance(model.net, usermodels.Nested.Inner)
    assert import_model_class("usermodels:TwoLayer") is usermodels.TwoLayer


def test_user_model_missing_module_names_the_module():
    with pytest.raises(SpecError, match=r"cannot import module 'no_such_pkg_xyz\.models'"):
        build_model(
            model_spec({"target": "no_such_pkg_xyz.models:Net"}), in_shape=(3,), out_features=2
        )


def test_user_model_missing_class_suggests_the_closest(usermodels):
    with pytest.raises(SpecError, match=r"no attribute 'TwoLayr'.*did you mean `TwoLayer`"):
        build_model(model_spec({"target": "usermodels:TwoLayr"}), in_shape=(3,), out_features=2)


def test_user_target_that_is_not_a_module_class(usermodels):
    with pytest.raises(SpecError, match=r"usermodels:not_a_module is not a torch.nn.Module"):
        build_model(
            model_spec({"target": "usermodels:not_a_module"}), in_shape=(3,), out_features=2
        )
    with pytest.raises(SpecError, match="not a torch.nn.Module"):
        build_model(model_spec({"target": "usermodels:RECEIVED"}), in_shape=(3,), out_features=2)


def test_user_model_unknown_kwarg(usermodels):
    spec = model_spec({"target": "usermodels:TwoLayer", "kwargs": {"widht": 4}})
    with pytest.raises(SpecError, match=r"takes no parameter 'widht'.*did you mean `width`"):
        build_model(spec, in_shape=(3,), out_features=2, num_classes=2)


def test_user_model_constructor_error_is_reported_with_its_type(usermodels):
    with pytest.raises(
        SpecError, match=r"usermodels:Broken\(in_features\) raised ValueError: width"
    ):
        build_model(model_spec({"target": "usermodels:Broken"}), in_shape=(3,), out_features=2)


def test_user_module_is_imported_only_when_the_spec_names_it(monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.delitem(sys.modules, "usermodels", raising=False)
    for name in ("linear", "mlp"):
        build_model(model_spec(name), in_shape=(3,), out_features=2)
    tunelab.load_spec({"data": "iris", "model": {"target": "usermodels:TwoLayer"}})
    assert "usermodels" not in sys.modules  # parsing a spec does not import the module
    build_model(
        model_spec({"target": "usermodels:TwoLayer"}), in_shape=(3,), out_features=2, num_classes=2
    )
    assert "usermodels" in sys.modules
