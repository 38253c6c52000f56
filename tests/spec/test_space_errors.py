"""Errors in ``tune.space`` are one line: the entry, what is wrong, and the forms an entry takes."""

from __future__ import annotations

import pytest

from tunelab.errors import SpecError
from tunelab.spec import load_spec

BASE = {"data": "iris", "model": "mlp"}


def _error(space: dict) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(BASE | {"tune": {"space": space}})
    return str(info.value)


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"low": 1e-4, "hi": 0.1}, "unknown key `hi` (did you mean `high`?)"),
        ({"low": 0.1, "high": 0.01}, "low must be below high; got low=0.1, high=0.01"),
        ({"lo": 1, "high": 3}, "unknown key `lo` (did you mean `low`?)"),
        ({"high": 3}, "missing key `low`"),
        ({"low": "a", "high": 3}, "`low`: expected a number; got 'a'"),
        ({"choices": [1], "whenn": {}}, "unknown key `whenn` (did you mean `when`?)"),
        ({"choices": []}, "`choices`: list should have at least 1 item"),
        ({"name": None}, "expected a list of choices [a, b], {choices: [a, b]"),
        (5, "{low: L, high: H, log: true|false, step: S, when: {...}}; got 5"),
        ([], "is an empty list of choices"),
    ],
)
def test_a_space_error_is_one_line_naming_the_entry(entry, expected):
    message = _error({"train.optimizer.lr": entry})
    assert "\n" not in message
    assert "space entry 'train.optimizer.lr'" in message
    assert expected in message
    for internal in ("SpaceChoice", "SpaceRange", "constrained", "literal[", "list[any]"):
        assert internal not in message


def test_a_typo_in_a_second_entry_names_that_entry():
    message = _error({"model.dropout": [0.1, 0.2], "train.optimizer.lr": {"low": 0.1, "hgih": 1}})
    assert (
        "space entry 'train.optimizer.lr'" in message and "`hgih` (did you mean `high`?)" in message
    )
