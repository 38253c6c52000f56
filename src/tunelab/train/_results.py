"""What a finished run reports besides its metrics: calibration, fold spread, the learned line."""

from __future__ import annotations

import numpy as np
import torch

from tunelab.data import Dataset
from tunelab.evaluate import (
    apply_temperature,
    brier_score,
    compute_metrics,
    expected_calibration_error,
    fit_temperature,
    reliability_diagram,
)
from tunelab.spec import LinearModel, Spec
from tunelab.train._plan import Prepared

__all__ = ["calibration", "mean_std", "affine_summary"]


def calibration(prep: Prepared, arrays: dict[str, np.ndarray]) -> dict:
    """ECE (equal-width and equal-mass bins), Brier score and reliability-diagram data per
    part; with ``evaluate.temperature``, a temperature fitted on the validation part alone and
    the test part's calibration after it."""
    out: dict = {}
    for part in ("val", "test"):
        if f"{part}_score" not in arrays:
            continue
        y, score = arrays[f"{part}_y"], arrays[f"{part}_score"]
        out[part] = {
            "ece": expected_calibration_error(y, score, strategy="uniform"),
            "ece_equal_mass": expected_calibration_error(y, score, strategy="quantile"),
            "brier": brier_score(y, score),
            "reliability": reliability_diagram(y, score),
        }
    if prep.spec.evaluate.temperature and "val_score" in arrays:
        t = fit_temperature(arrays["val_y"], arrays["val_score"])
        out["temperature"] = t
        if "test_score" in arrays:
            y, calibrated = arrays["test_y"], apply_temperature(arrays["test_score"], t)
            out["test_calibrated"] = {
                "ece": expected_calibration_error(y, calibrated, strategy="uniform"),
                "brier": brier_score(y, calibrated),
                "log_loss": compute_metrics("classification", y, calibrated, names=["log_loss"])[
                    "log_loss"
                ],
                "reliability": reliability_diagram(y, calibrated),
            }
    return out


def mean_std(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    keys = rows[0].keys() if rows else []
    arr = {k: np.array([r[k] for r in rows], dtype=float) for k in keys}
    return {
        "mean": {k: float(np.nanmean(v)) for k, v in arr.items()},
        "std": {k: float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0 for k, v in arr.items()},
    }


def affine_summary(spec: Spec, ds: Dataset, model: torch.nn.Module) -> str | None:
    """For a linear regression on few features: the learned line in the data's own units."""
    if not isinstance(spec.model, LinearModel) or ds.task != "regression" or ds.in_features > 3:
        return None
    if ds.featurizer is not None:  # the model's inputs are not the table's columns
        return None
    device = next(model.parameters()).device
    with torch.no_grad():
        model.eval()
        probe = torch.cat([torch.zeros(1, ds.in_features), torch.eye(ds.in_features)]).to(device)
        out = model(probe.reshape(-1, *ds.in_shape)).reshape(len(probe), -1)[:, 0].cpu()
    intercept = float(out[0])
    slopes = (out[1:] - out[0]).tolist()
    names = ds.feature_names or [f"x{i}" for i in range(ds.in_features)]
    terms = " + ".join(f"{w:.4f} * {n}" for w, n in zip(slopes, names, strict=True))
    sign = "+" if intercept >= 0 else "-"
    return f"learned: y = {terms} {sign} {abs(intercept):.4f}"
