"""Experiment trackers: a finished run or study folder logged to MLflow or TensorBoard.

Each tracker is an optional extra (``pip install 'tunelab[mlflow]'``,
``'tunelab[tensorboard]'``), imported only when used. ``track(folder, mlflow=URI,
tensorboard=DIR)`` reads the folder into a :class:`Record` (``record_of``) and writes it with
``to_mlflow`` / ``to_tensorboard``. ``MlflowLogger`` and ``TensorBoardLogger`` are ``fit``
callbacks that log each epoch as it ends, for code that calls ``fit`` on its own tensors.
"""

from tunelab._lazy import lazy_exports

_EXPORTS = {
    "track": "_track",
    "Tracked": "_track",
    "require": "_track",
    "record_of": "_records",
    "Record": "_records",
    "Curve": "_records",
    "to_mlflow": "_mlflow",
    "to_tensorboard": "_tensorboard",
    "MlflowLogger": "_live",
    "TensorBoardLogger": "_live",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
