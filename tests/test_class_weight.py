"""`class_weight` on MLPClassifier: a dict or 'balanced', multiplied into sample_weight."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import recall_score
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight

from cymlp import MLPClassifier

PARAMS = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=5, batch_size=16)


def _quiet(est, X, y, **kw):
    with warnings.catch_warnings():  # ConvergenceWarning at max_iter, if it comes
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


def _assert_same_weights(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(u, v)


def _multiclass(n=120, seed=0):
    X, y = make_classification(
        n_samples=n, n_features=6, n_informative=4, n_classes=3, random_state=seed
    )
    return X, np.array(["ant", "bee", "cat"])[y]


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_dict_equals_the_same_sample_weight(solver):
    X, y = _multiclass()
    weights = {"ant": 3.0, "cat": 0.25}  # 'bee' is missing: weight 1
    sw = np.array([weights.get(c, 1.0) for c in y])
    a = MLPClassifier(solver=solver, class_weight=weights, **PARAMS)
    b = MLPClassifier(solver=solver, **PARAMS)
    _quiet(a, X, y)
    _quiet(b, X, y, sample_weight=sw)
    _assert_same_weights(a, b)
    # and it really changes the fit
    c = _quiet(MLPClassifier(solver=solver, **PARAMS), X, y)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


def test_dict_multiplies_given_sample_weight():
    X, y = _multiclass()
    sw = np.random.RandomState(0).uniform(0.5, 2, len(y))
    weights = {"bee": 2.0}
    a = _quiet(MLPClassifier(class_weight=weights, **PARAMS), X, y, sample_weight=sw)
    b = _quiet(MLPClassifier(**PARAMS), X, y, sample_weight=sw * np.where(y == "bee", 2.0, 1.0))
    _assert_same_weights(a, b)


def test_binary_dict_and_partial_fit():
    X, y = make_classification(n_samples=100, n_features=5, random_state=1)
    weights = {0: 0.5, 1: 4.0}
    sw = np.where(y == 1, 4.0, 0.5)
    a = MLPClassifier(class_weight=weights, **PARAMS)
    b = MLPClassifier(**PARAMS)
    for _ in range(3):
        a.partial_fit(X, y, classes=[0, 1])
        b.partial_fit(X, y, sample_weight=sw, classes=[0, 1])
    _assert_same_weights(a, b)


def test_balanced_equals_compute_class_weight():
    X, y = _multiclass()
    keep = np.r_[np.flatnonzero(y == "ant"), np.flatnonzero(y != "ant")[::3]]
    X, y = X[keep], y[keep]
    classes = np.unique(y)
    cw = compute_class_weight("balanced", classes=classes, y=y)
    expected = len(y) / (3 * np.array([np.sum(y == c) for c in classes]))
    np.testing.assert_allclose(cw, expected)
    sw = cw[np.searchsorted(classes, y)]
    a = _quiet(MLPClassifier(class_weight="balanced", **PARAMS), X, y)
    b = _quiet(MLPClassifier(**PARAMS), X, y, sample_weight=sw)
    _assert_same_weights(a, b)


def test_balanced_counts_are_weighted_by_sample_weight():
    """As scikit-learn's LogisticRegression: with sample weights, 'balanced' uses the
    weighted class counts, so integer weights act like repeated rows."""
    X, y = make_classification(n_samples=60, n_features=4, random_state=2)
    sw = np.random.RandomState(0).randint(1, 4, len(y)).astype(float)
    totals = np.array([sw[y == c].sum() for c in (0, 1)])
    cw = sw.sum() / (2 * totals)
    a = _quiet(MLPClassifier(class_weight="balanced", **PARAMS), X, y, sample_weight=sw)
    b = _quiet(MLPClassifier(**PARAMS), X, y, sample_weight=sw * cw[y])
    _assert_same_weights(a, b)


def test_balanced_raises_minority_recall():
    X, y = make_classification(
        n_samples=3000,
        n_features=10,
        n_informative=4,
        weights=[0.95, 0.05],
        flip_y=0.02,
        class_sep=0.6,
        random_state=0,
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    params = dict(hidden_layer_sizes=(16,), random_state=0, max_iter=60)
    recalls = {}
    for cw in (None, "balanced"):
        clf = _quiet(MLPClassifier(class_weight=cw, **params), X_train, y_train)
        recalls[cw] = recall_score(y_test, clf.predict(X_test), pos_label=1)
    assert recalls["balanced"] > recalls[None] + 0.15, recalls


def test_unknown_class_keys_raise_naming_them():
    X, y = _multiclass()
    clf = MLPClassifier(class_weight={"ant": 2.0, "dog": 1.0, "eel": 3.0}, **PARAMS)
    with pytest.raises(ValueError, match=r"'dog', 'eel'"):
        clf.fit(X, y)


def test_balanced_partial_fit_raises():
    X, y = _multiclass()
    clf = MLPClassifier(class_weight="balanced", **PARAMS)
    with pytest.raises(ValueError, match="balanced.*partial_fit"):
        clf.partial_fit(X, y, classes=np.unique(y))


def test_multilabel_raises():
    X = np.random.RandomState(0).standard_normal((20, 3))
    Y = np.random.RandomState(1).randint(0, 2, (20, 2))
    with pytest.raises(ValueError, match="multilabel"):
        MLPClassifier(class_weight={0: 2.0}, **PARAMS).fit(X, Y)
    # without class_weight multilabel still fits
    _quiet(MLPClassifier(**PARAMS), X, Y)


def test_invalid_class_weight_type_is_rejected():
    X, y = _multiclass()
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight="uniform").fit(X, y)


@pytest.mark.parametrize(
    "value, error, match",
    [
        (np.nan, ValueError, r"class_weight\['bee'\] must be a finite number >= 0, got nan"),
        (np.inf, ValueError, r"class_weight\['bee'\] must be a finite number >= 0, got inf"),
        (-1.0, ValueError, r"class_weight\['bee'\] must be a finite number >= 0, got -1.0"),
        ("2", TypeError, r"class_weight\['bee'\] must be a number, got '2'"),
        (None, TypeError, r"class_weight\['bee'\] must be a number, got None"),
    ],
)
def test_class_weight_values_must_be_finite_non_negative_numbers(value, error, match):
    """Checked before training: NaN used to end in a misleading "Training diverged"."""
    X, y = _multiclass()
    clf = MLPClassifier(class_weight={"ant": 2.0, "bee": value}, **PARAMS)
    with pytest.raises(error, match=match):
        clf.fit(X, y)
    with pytest.raises(error, match=match):
        clf.partial_fit(X, y, classes=np.unique(y))
    # zero is a valid weight (rows of that class do not count)
    _quiet(MLPClassifier(class_weight={"bee": 0}, **PARAMS), X, y)


def test_class_weights_that_weigh_every_row_zero():
    # the error blamed sample_weight ("mini-batch 1 sum to zero")
    X, y = _multiclass()
    weights = {c: 0 for c in np.unique(y)}
    with pytest.raises(ValueError, match="weighs every training row 0"):
        MLPClassifier(class_weight=weights, **PARAMS).fit(X, y)
