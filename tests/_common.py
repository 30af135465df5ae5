"""Shared data sets and comparison helpers for the cymlp test suite.

Everything here is small on purpose: the whole suite has to run in a few minutes on
two cores, and scikit-learn's reference implementation loops over mini-batches in
Python. Only scikit-learn's bundled data sets and generators are used.
"""

import warnings
from functools import cache

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_iris,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

# Tolerances of the float64 parity tests (see DESIGN.md: same weights to rounding).
RTOL = 1e-6
ATOL = 1e-9


def _frozen(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


@cache
def iris():
    """Multiclass: 150 x 4, standardised, 3 classes."""
    X, y = load_iris(return_X_y=True)
    return _frozen(StandardScaler().fit_transform(X), y)


@cache
def binary():
    """Binary: 160 rows of breast_cancer, standardised, 30 features."""
    X, y = load_breast_cancer(return_X_y=True)
    X, y = X[:160], y[:160]
    return _frozen(StandardScaler().fit_transform(X), y)


@cache
def multilabel():
    """Multilabel indicator targets: 120 x 8, 3 labels."""
    X, Y = make_multilabel_classification(
        n_samples=120, n_features=8, n_classes=3, n_labels=2, random_state=0
    )
    return _frozen(StandardScaler().fit_transform(X), Y)


@cache
def regression():
    """Single-output regression: 200 rows of diabetes, standardised target."""
    X, y = load_diabetes(return_X_y=True)
    X, y = X[:200], y[:200]
    return _frozen(StandardScaler().fit_transform(X), (y - y.mean()) / y.std())


@cache
def multioutput():
    """Three-output regression: 150 x 6, standardised targets."""
    X, Y = make_regression(
        n_samples=150,
        n_features=6,
        n_informative=4,
        n_targets=3,
        noise=5.0,
        random_state=0,
    )
    return _frozen(StandardScaler().fit_transform(X), (Y - Y.mean(0)) / Y.std(0))


@cache
def counts():
    """Poisson regression: 150 x 5 Gaussian features, counts drawn from exp(linear)."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((150, 5))
    w = rng.uniform(-0.4, 0.4, 5)
    y = rng.poisson(np.exp(X @ w + 0.5)).astype(np.float64)
    return _frozen(X, y)


def sample_weights(n, seed=0):
    return np.random.RandomState(seed).uniform(0.2, 3.0, n)


def quiet_fit(est, *args, **kwargs):
    """est.fit without the ConvergenceWarning that short test runs always raise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


def quiet_partial_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.partial_fit(*args, **kwargs)


def assert_same_params(cy, sk, rtol=RTOL, atol=ATOL, check_dtype=True):
    """coefs_ / intercepts_ of two fitted MLPs agree (shapes, dtypes and values)."""
    assert len(cy.coefs_) == len(sk.coefs_)
    assert len(cy.intercepts_) == len(sk.intercepts_)
    for i, (a, b) in enumerate(zip(cy.coefs_, sk.coefs_)):
        assert a.shape == b.shape, f"coefs_[{i}] shape"
        if check_dtype:
            assert a.dtype == b.dtype, f"coefs_[{i}] dtype {a.dtype} != {b.dtype}"
        assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"coefs_[{i}]")
    for i, (a, b) in enumerate(zip(cy.intercepts_, sk.intercepts_)):
        assert a.shape == b.shape, f"intercepts_[{i}] shape"
        if check_dtype:
            assert a.dtype == b.dtype, f"intercepts_[{i}] dtype {a.dtype} != {b.dtype}"
        assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"intercepts_[{i}]")


def assert_same_fit(cy, sk, rtol=RTOL, atol=ATOL):
    """Everything a fit leaves behind agrees with scikit-learn's."""
    assert_same_params(cy, sk, rtol=rtol, atol=atol)
    assert cy.n_iter_ == sk.n_iter_
    assert cy.t_ == sk.t_
    assert cy.n_layers_ == sk.n_layers_
    assert cy.n_outputs_ == sk.n_outputs_
    assert cy.out_activation_ == sk.out_activation_
    assert cy.n_features_in_ == sk.n_features_in_
    assert_allclose(cy.loss_, sk.loss_, rtol=rtol, atol=atol, err_msg="loss_")
    for name in ("loss_curve_", "validation_scores_"):
        assert hasattr(cy, name) == hasattr(sk, name), name
        if hasattr(sk, name):
            a, b = getattr(cy, name), getattr(sk, name)
            if b is None:
                assert a is None, name
            else:
                assert len(a) == len(b), name
                # a diverged reference would make the comparison meaningless
                assert np.isfinite(b).all(), f"scikit-learn's {name} is not finite"
                assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
    for name in ("best_loss_", "best_validation_score_"):
        assert hasattr(cy, name) == hasattr(sk, name), name
        if hasattr(sk, name):
            a, b = getattr(cy, name), getattr(sk, name)
            if b is None:
                assert a is None, name
            else:
                assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=name)
    if hasattr(sk, "classes_"):
        assert_array_equal(cy.classes_, sk.classes_)


def assert_same_predictions(cy, sk, X, rtol=RTOL, atol=ATOL):
    if hasattr(sk, "predict_proba"):
        p_cy, p_sk = cy.predict_proba(X), sk.predict_proba(X)
        assert p_cy.shape == p_sk.shape
        assert p_cy.dtype == p_sk.dtype
        assert_allclose(p_cy, p_sk, rtol=rtol, atol=atol)
        assert_array_equal(cy.predict(X), sk.predict(X))
    else:
        y_cy, y_sk = cy.predict(X), sk.predict(X)
        assert y_cy.shape == y_sk.shape
        assert y_cy.dtype == y_sk.dtype
        assert_allclose(y_cy, y_sk, rtol=rtol, atol=atol)


def numpy_forward(coefs, intercepts, activation, out_activation, X):
    """Reference forward pass written from scikit-learn's formulas."""
    from sklearn.neural_network._base import ACTIVATIONS

    A = np.asarray(X)
    for i, (W, b) in enumerate(zip(coefs, intercepts)):
        A = A @ W + b  # a new array: the in-place activations below are safe
        if i < len(coefs) - 1:
            ACTIVATIONS[activation](A)
    ACTIVATIONS[out_activation](A)
    return A
