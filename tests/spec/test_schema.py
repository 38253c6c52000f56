"""The spec's JSON Schema: examples validate against it, wrong specs do not, every field is
described with its default, and `tunelab schema` writes it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tunelab.plugins import MODELS, OPTIMIZERS
from tunelab.spec import load_spec, spec_schema

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(validator, path):
    assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == []


SHORTHANDS = [
    "data: iris\nmodel: mlp\n",
    "data: iris\nmodel: torch.nn:Identity\nsplit: {cv: loo}\n",
    "data: iris\nmodel: {target: torch.nn:Identity, kwargs: {}}\nsplit: {cv: 5}\n",
    "data: iris\nmodel: linear\ntrain: {optimizer: sgd, loss: cross_entropy, augment: [noise]}\n",
    "data: iris\nmodel: mlp\ntune: {sampler: random, pruner: none, space: {train.epochs: [1, 2]}}\n",
]


@pytest.mark.parametrize("text", SHORTHANDS)
def test_the_shorthands_the_spec_accepts_validate(validator, text):
    assert list(validator.iter_errors(yaml.safe_load(text))) == []
    load_spec(yaml.safe_load(text))  # and the spec itself takes them (the schema is no looser)


WRONG = {
    "unknown key": ("data: iris\nmodel: mlp\ntrain: {optimzer: adam}\n", "optimzer"),
    "unknown model": ("data: iris\nmodel: mlpp\n", "mlpp"),
    "unknown option": ("data: iris\nmodel: {name: mlp, hidden: [8], dropuot: 0.1}\n", "mlp"),
    "out of range": ("data: iris\nmodel: mlp\ntrain: {epochs: 0}\n", "minimum"),
    "wrong type": ("data: iris\nmodel: mlp\nsplit: {test: lots}\n", "lots"),
    "missing model": ("data: iris\n", "'model' is a required property"),
    "unknown sampler": ("data: iris\nmodel: mlp\ntune: {sampler: tpee, space: {a: [1]}}\n", "tpee"),
}


@pytest.mark.parametrize("case", WRONG, ids=list(WRONG))
def test_a_wrong_spec_fails(validator, case):
    text, expected = WRONG[case]
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
    assert errors, case
    assert any(expected in m for m in errors), errors


def test_every_field_is_described_with_its_default():
    schema = spec_schema()
    nodes = {"Spec": schema, **schema["$defs"]}
    for name, node in nodes.items():
        required = set(node.get("required", ()))
        for field, prop in node.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"
            if field not in required and not ("const" in prop and field in ("name", "source")):
                assert "default" in prop, f"{name}.{field} has no default"
    train = schema["$defs"]["TrainSpec"]["properties"]
    assert train["optimizer"]["default"]["name"] == "adam"  # a factory's default is shown too
    assert train["epochs"]["default"] == 10


def test_the_unions_name_every_registered_plugin():
    schema = spec_schema()
    model = schema["properties"]["model"]["anyOf"]
    assert model[1]["enum"] == MODELS.names()
    optimizer = schema["$defs"]["TrainSpec"]["properties"]["optimizer"]["anyOf"]
    assert optimizer[1]["enum"] == OPTIMIZERS.names()
    refs = {m["$ref"].rsplit("/", 1)[1] for m in optimizer[0]["oneOf"]}
    assert refs == {p.options.__name__ for p in OPTIMIZERS}


def test_cli_writes_the_schema(cli, tmp_path):
    result = cli("schema", "-o", "tunelab.schema.json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"schema: {Path('tunelab.schema.json')}"
    written = json.loads((tmp_path / "tunelab.schema.json").read_text())
    assert written == json.loads(json.dumps(spec_schema()))
    printed = cli("schema")
    assert json.loads(printed.stdout)["title"] == "tunelab spec"


def test_the_written_spec_drops_settings_that_do_not_apply():
    from tunelab.spec import applied, dump_spec

    cv = load_spec({"data": "iris", "model": "mlp", "split": {"cv": 5, "val": 0.3}})
    written = yaml.safe_load(dump_spec(cv))["split"]
    assert "val" not in written and "repeats" not in written["cv"]
    assert applied(load_spec(yaml.safe_load(dump_spec(cv)))) == applied(cv)  # a resume agrees
    repeated = load_spec({"data": "iris", "model": "mlp", "split": {"cv": {"kind": "repeated"}}})
    assert yaml.safe_load(dump_spec(repeated))["split"]["cv"]["repeats"] == 3
    holdout = yaml.safe_load(dump_spec(load_spec({"data": "iris", "model": "mlp"})))["split"]
    assert holdout["val"] == 0.2 and holdout["cv"] is None
