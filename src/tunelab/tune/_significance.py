"""Is the best trial really better than the runner-up?

Cross-validation studies: the Nadeau-Bengio corrected resampled t-test over the two trials'
per-fold values (same folds). Holdout studies: a paired bootstrap of the difference on the two
trials' validation predictions (same samples). Either way one plain sentence, saved with the
study; "no significant difference" is the common, honest answer for close configurations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from tunelab.data import Splits
from tunelab.evaluate import corrected_resampled_ttest, paired_bootstrap_diff, verdict
from tunelab.tune._console import result_of

__all__ = ["best_vs_runner_up"]


def best_vs_runner_up(
    study: optuna.Study,
    folder: Path,
    *,
    splits: Splits,
    y: np.ndarray,
    task: str,
    metric: str,
    maximize: bool,
    level: float = 0.95,
) -> dict | None:
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if len(done) < 2:
        return None
    best, second = sorted(done, key=lambda t: t.value, reverse=maximize)[:2]
    name = metric if metric != "loss" else ("log_loss" if task == "classification" else "mse")
    a, b = f"trial {second.number}", f"trial {best.number}"
    folds_b, folds_r = result_of(best).get("fold_values"), result_of(second).get("fold_values")
    record = {"best": best.number, "runner_up": second.number, "metric": name}
    if len(splits.folds) > 1 and folds_b and folds_r and len(folds_b) == len(folds_r):
        n_train = int(np.mean([len(f.train) for f in splits.folds]))
        n_test = int(np.mean([len(f.val) for f in splits.folds]))
        t = corrected_resampled_ttest(folds_r, folds_b, n_train=n_train, n_test=n_test, level=level)
        low, high = t.low, t.high
        record |= {
            "test": "corrected t-test over folds",
            "diff": t.mean_diff,
            "low": low,
            "high": high,
            "p_value": t.p_value,
        }
    else:
        pb, pr = (folder / "trials" / str(t.number) / "predictions.npz" for t in (best, second))
        if not (pb.is_file() and pr.is_file()):
            return None
        with np.load(pb) as fb, np.load(pr) as fr:
            if not np.array_equal(fb["val_index"], fr["val_index"]):
                return None
            idx, sb, sr = fb["val_index"], fb["val_score"], fr["val_score"]
        d = paired_bootstrap_diff(task, y[idx], sr, sb, name, level=level)
        record |= {
            "test": "paired bootstrap",
            "diff": d.diff,
            "low": d.low,
            "high": d.high,
            "p_value": d.p_value,
        }
    record["verdict"] = verdict(
        a,
        b,
        name,
        record["diff"],
        record["low"],
        record["high"],
        record["p_value"],
        record["test"],
        level=level,
    )
    return record
