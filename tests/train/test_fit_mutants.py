"""What ``tunelab train`` picks its best epoch by (``monitored``), every mode against every kind
of monitor: found unguarded by scripts/mutation.py."""

from __future__ import annotations

import pytest

from tunelab.spec import TrainSpec
from tunelab.train._fit import monitored


@pytest.mark.parametrize(
    ("monitor", "mode", "expected"),
    [
        ("val_loss", "auto", False),
        ("val_accuracy", "auto", True),
        ("val_loss", "max", True),  # what the user asked for, even for a loss
        ("val_accuracy", "min", False),
        ("val_accuracy", "max", True),
        ("val_loss", "min", False),
    ],
)
def test_the_mode_decides_the_direction_and_auto_asks_the_metric(monitor, mode, expected):
    cfg = TrainSpec(early_stopping={"monitor": monitor, "mode": mode})
    assert monitored(cfg, has_val=True) == (monitor, expected)


def test_without_early_stopping_it_is_the_val_loss_and_without_val_nothing():
    assert monitored(TrainSpec(), has_val=True) == ("val_loss", False)
    cfg = TrainSpec(early_stopping={"monitor": "val_accuracy"})
    assert monitored(cfg, has_val=False) is None
