"""Write a record as TensorBoard event files (``torch.utils.tensorboard.SummaryWriter``).

Layout under the log folder, named by the run or study folder:

```
DIR/<run>/                 scalars per epoch: train/loss, val/loss, val/<metric>, lr
DIR/<run>/fold_<k>/, refit/  the same, per pass, for a cross-validated run
DIR/<run>/hparams/         the hparams session: flattened spec -> final metrics (hparam/val.rmse)
DIR/<study>/best/          the refit of the best (and the sealed test in its hparams)
DIR/<study>/trial_<n>/     each trial's scalars; its hparams session: tuned values -> its value
```
"""

from __future__ import annotations

from pathlib import Path

from tunelab.errors import TunelabError
from tunelab.track._records import Curve, Record

__all__ = ["to_tensorboard", "summary_writer", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'tunelab[tensorboard]'"


def to_tensorboard(record: Record, logdir: str | Path) -> Path:
    """Write ``record`` (and its trials) under ``logdir``; returns the record's folder there."""
    writer_class = summary_writer()
    root = Path(logdir) / record.folder.name
    if record.kind == "study":
        _write(writer_class, root / "best", record.curves, record.hparams, record.metrics)
        for child in record.children:
            _write(writer_class, root / f"trial_{child.tags['tunelab.trial']}", child.curves,
                   child.hparams, child.metrics)  # fmt: skip
    else:
        _write(writer_class, root, record.curves, record.hparams, record.metrics)
    return root


def _write(writer_class, folder: Path, curves: list[Curve], hparams: dict, metrics: dict) -> None:
    """One pass per sub-folder when there are several (folds, refit); the hparams session."""
    finals = {f"hparam/{k}": v for k, v in metrics.items() if not k.endswith(("ci_low", "ci_high"))}
    with writer_class(log_dir=str(folder)) as writer:
        for curve in curves:
            if curve.name is None or len(curves) == 1:
                _scalars(writer, curve)
            else:
                with writer_class(log_dir=str(folder / curve.name)) as own:
                    _scalars(own, curve)
        if hparams and finals:
            writer.add_hparams(dict(hparams), finals, run_name="hparams")


def _scalars(writer, curve: Curve) -> None:
    for epoch, part, metric, value in curve.scalars():
        writer.add_scalar(f"{part}/{metric}" if metric else part, value, epoch)


def summary_writer():
    """torch's ``SummaryWriter``; one line naming the extra when tensorboard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise TunelabError(
            f"TensorBoard logging (--tensorboard) needs the tensorboard package ({exc}); "
            f"install it with: {INSTALL_HINT}"
        ) from None
    return SummaryWriter
