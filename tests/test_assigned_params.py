"""Errors for parameters that no longer fit the network: arrays assigned to coefs_ /
intercepts_ with the wrong count or shape, and a warm start whose layers changed."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

import cymlp


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def _fitted(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cymlp.MLPClassifier(
            hidden_layer_sizes=(5,), max_iter=3, random_state=0, **params
        ).fit(X, y)


@pytest.mark.parametrize("name", ["coefs_", "intercepts_"])
def test_assigned_list_of_wrong_length(iris, name):
    X, y = iris
    clf = _fitted(X, y)
    setattr(clf, name, getattr(clf, name)[:1])
    with pytest.raises(ValueError, match=f"{name} has 1 arrays, the network has 2"):
        clf.predict(X)


@pytest.mark.parametrize("name", ["coefs_", "intercepts_"])
def test_assigned_array_of_wrong_shape(iris, name):
    X, y = iris
    clf = _fitted(X, y)
    arrays = [a.copy() for a in getattr(clf, name)]
    arrays[1] = np.zeros(arrays[1].shape + (2,))
    setattr(clf, name, arrays)
    with pytest.raises(ValueError, match=rf"{name}\[1\] has shape"):
        clf.predict(X)


@pytest.mark.parametrize("bad", [None, 1 + 1j, np.datetime64("2026-01-01", "s"), "0.5"], ids=repr)
def test_assigned_array_of_no_real_numbers(iris, bad):
    # numpy would cast them into the weights: None to NaN, complex to its real part,
    # datetimes to integers, strings of numbers to numbers
    X, y = iris
    clf = _fitted(X, y)
    clf.coefs_[1] = np.full(clf.coefs_[1].shape, bad)
    with pytest.raises(TypeError, match=r"coefs_\[1\] must hold real numbers"):
        clf.predict(X)


def test_assigned_values_beyond_a_float32_network(iris):
    X, y = iris
    clf = _fitted(X, y, dtype=np.float32)
    big = clf.coefs_[0].astype(np.float64)
    big[0, 0] = 1e300
    clf.coefs_[0] = big
    with pytest.raises(ValueError, match=r"coefs_\[0\] has values beyond the range of float32"):
        clf.predict(X)
    big[0, 0] = np.inf  # an infinite value is taken as it is (scikit-learn's would be too)
    clf.coefs_[0] = big
    clf.predict(X)
    assert np.isinf(clf.coefs_[0][0, 0])


def test_assigned_arrays_are_used(iris):
    X, y = iris
    clf = _fitted(X, y)
    clf.coefs_ = [np.zeros_like(c) for c in clf.coefs_]
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    # all-zero weights: every class equally likely
    np.testing.assert_allclose(clf.predict_proba(X[:4]), np.full((4, 3), 1 / 3))


def test_warm_start_with_other_layers(iris):
    X, y = iris
    clf = _fitted(X, y, warm_start=True)
    clf.set_params(hidden_layer_sizes=(6,))
    with pytest.raises(ValueError, match="The fitted network's layers"):
        clf.fit(X, y)
