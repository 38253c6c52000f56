"""The macro, micro and weighted averages at their edges (a class seen exactly once, a zero
denominator, many rows at once as the bootstrap uses them) and the message for an unknown
average: found unguarded by scripts/mutation.py."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.errors import TunelabError
from tunelab.evaluate import balanced_accuracy, f1, precision, recall
from tunelab.evaluate._classification import _averaged_rows, _safe_divide


def onehot(labels, k):
    return np.eye(k)[labels]


def test_a_class_with_one_true_sample_that_is_never_predicted_counts_in_the_macro_mean():
    y = [0, 0, 1, 2, 2]
    pred = onehot([0, 0, 0, 2, 2], 3)  # class 1: one true sample, missed
    assert recall(y, pred) == pytest.approx((1 + 0 + 1) / 3)
    assert precision(y, pred) == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert balanced_accuracy(y, pred) == pytest.approx((1 + 0 + 1) / 3)


def test_a_class_predicted_once_with_no_true_sample_counts_in_the_macro_mean():
    y = [0, 0, 2, 2]
    pred = onehot([0, 1, 2, 2], 3)  # class 1: predicted once, never true
    assert precision(y, pred) == pytest.approx((1 + 0 + 1) / 3)
    assert recall(y, pred) == pytest.approx((0.5 + 0 + 1) / 3)
    assert f1(y, pred) == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_a_class_predicted_once_and_right_has_precision_one():
    y = [0, 0, 0, 1]
    pred = onehot([0, 0, 0, 1], 2)
    assert precision(y, pred) == 1.0
    assert recall(y, pred) == 1.0
    assert balanced_accuracy(y, pred) == 1.0
    assert precision(y, pred, average="weighted") == 1.0


def test_a_zero_denominator_gives_zero_whatever_the_memory_held():
    # numpy reuses the memory of a freed small array: without its zeros the 7s would show
    for _ in range(20):
        junk = np.full(64, 7.0)
        del junk
        out = _safe_divide(np.ones(64), np.zeros(64))
        assert out.dtype == np.float64
        assert not out.any()
    mixed = _safe_divide(np.array([1, 2, 3]), np.array([0, 1, 2]))
    assert mixed.tolist() == [0.0, 2.0, 1.5]


def test_many_rows_are_averaged_row_by_row():
    # two resamples' per-class counts (r = 2, k = 3), as the bootstrap passes them
    tp = np.array([[2.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    predicted = np.array([[3.0, 0.0, 1.0], [1.0, 2.0, 0.0]])
    support = np.array([[2.0, 1.0, 1.0], [2.0, 1.0, 0.0]])
    micro = _averaged_rows(tp, predicted, support, predicted, "micro")
    assert micro.tolist() == pytest.approx([3 / 4, 2 / 3])
    macro = _averaged_rows(tp, predicted, support, predicted, "macro")
    assert macro.tolist() == pytest.approx([(2 / 3 + 0 + 1) / 3, (1 + 0.5) / 2])
    weighted = _averaged_rows(tp, predicted, support, predicted, "weighted")
    assert weighted.tolist() == pytest.approx([(2 * 2 / 3 + 0 + 1) / 4, (2 * 1 + 0.5) / 3])


def test_an_unknown_average_is_refused_with_the_choices():
    with pytest.raises(TunelabError) as err:
        precision([0, 1], onehot([0, 1], 2), average="macor")
    assert str(err.value) == (
        "average must be one of macro, micro, weighted; got `macor` (did you mean `macro`?)."
    )


# --- the vectorised forms the bootstrap uses, built here (not at import) so each is checked


def _sums(*samples, k):
    """Resample-weighted count sums, one row per (y, labels) sample with unit weights."""
    rows = {"tp": [], "predicted": [], "support": [], "total": []}
    for y, labels in samples:
        y, labels = np.asarray(y), np.asarray(labels)
        rows["tp"].append(np.bincount(y[y == labels], minlength=k))
        rows["predicted"].append(np.bincount(labels, minlength=k))
        rows["support"].append(np.bincount(y, minlength=k))
        rows["total"].append(len(y))
    return {key: np.asarray(v, dtype=np.float64) for key, v in rows.items()}


SAMPLES = (
    ([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]),
    ([0, 1, 1, 1, 3], [0, 0, 1, 3, 3]),  # class 2 neither true nor predicted
    ([0, 0, 0, 1], [0, 2, 0, 1]),  # class 2 predicted once, never true; class 3 absent
)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize(("family", "metric"), [("precision", precision), ("recall", recall),
                                                ("f1", f1)])  # fmt: skip
def test_an_averaged_form_is_the_metric_on_every_row(family, metric, average):
    from tunelab.evaluate._classification import averaged_form

    form = averaged_form(family, average)
    assert form.needs == ("tp", "predicted", "support")
    expected = [metric(y, onehot(labels, 4), average=average) for y, labels in SAMPLES]
    assert form.fn(_sums(*SAMPLES, k=4)) == pytest.approx(expected)


def test_the_balanced_accuracy_form_skips_only_classes_without_a_true_sample():
    from tunelab.evaluate._classification import BALANCED_ACCURACY_FORM

    samples = ([0, 0, 1, 2], [0, 1, 1, 0]), ([0, 1, 1, 3], [0, 0, 1, 3])  # support 1 and 0
    expected = [balanced_accuracy(y, onehot(labels, 4)) for y, labels in samples]
    assert BALANCED_ACCURACY_FORM.fn(_sums(*samples, k=4)) == pytest.approx(expected)
    assert expected == pytest.approx([(1 / 2 + 1 + 0) / 3, (1 + 1 / 2 + 1) / 3])


def test_a_mean_form_divides_the_feature_sum_by_the_resample_total():
    from tunelab.evaluate._classification import _mean_of

    rows = _mean_of("nll")({"nll": np.array([[3.0], [8.0]]), "total": np.array([2.0, 4.0])})
    assert rows.tolist() == [1.5, 2.0]
