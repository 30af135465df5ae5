"""Pickling, copying, cloning, and users writing coefs_ / intercepts_ themselves.

cymlp keeps its parameters in one flat buffer and hands out coefs_ / intercepts_ as
views into it. These tests make sure that this never shows: after unpickling, copying
or assigning new arrays, what the user sees and what the engine trains are the same
thing, exactly as in scikit-learn (which is the reference for every sequence below).
"""

import copy
import io
import pickle

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sknn
from sklearn.base import clone

import cymlp

from _common import (
    assert_same_fit,
    assert_same_params,
    assert_same_predictions,
    iris,
    numpy_forward,
    quiet_fit,
    regression,
)

NAMES = ["MLPClassifier", "MLPRegressor"]
SOLVERS = ["sgd", "adam"]


def _data(name):
    return iris() if name == "MLPClassifier" else regression()


def _params(solver, **kw):
    p = dict(
        hidden_layer_sizes=(6, 4),
        solver=solver,
        random_state=0,
        max_iter=4,
        learning_rate_init=0.02,
        batch_size=40,
    )
    p.update(kw)
    return p


def _pair(name, **params):
    return getattr(cymlp, name)(**params), getattr(sknn, name)(**params)


def _output(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _assert_predict_uses_coefs(est, X):
    """predict is the forward pass of the coefs_ / intercepts_ the user sees."""
    ref = numpy_forward(est.coefs_, est.intercepts_, est.activation, est.out_activation_, X)
    out = _output(est, X)
    if out.ndim == 2 and ref.shape[1] == 1 and out.shape[1] == 2:
        ref = np.hstack([1 - ref, ref])
    assert_allclose(out.reshape(ref.shape), ref, rtol=1e-9, atol=1e-12)


def _roundtrip(est):
    return pickle.loads(pickle.dumps(est))


# --------------------------------------------------------------------------------------
# pickle
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", SOLVERS + ["lbfgs"])
@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_same_predictions(name, solver, dtype):
    X, y = _data(name)
    X = X.astype(dtype)
    est = quiet_fit(getattr(cymlp, name)(**_params(solver)), X, y)
    est2 = _roundtrip(est)
    assert_array_equal(_output(est2, X), _output(est, X))
    assert_array_equal(est2.predict(X), est.predict(X))
    for a, b in zip(est.coefs_ + est.intercepts_, est2.coefs_ + est2.intercepts_):
        assert a.dtype == b.dtype
        if solver != "lbfgs":  # scikit-learn's lbfgs returns float64 for float32 data
            assert a.dtype == dtype
        assert_array_equal(a, b)
    for attr in (
        "n_iter_",
        "t_",
        "loss_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "n_features_in_",
    ):
        assert getattr(est2, attr) == getattr(est, attr)
    if solver != "lbfgs":
        assert est2.loss_curve_ == est.loss_curve_
    assert est2.get_params() == est.get_params()


def test_pickle_unfitted():
    est = cymlp.MLPClassifier(hidden_layer_sizes=(3,), dtype=np.float32)
    est2 = _roundtrip(est)
    assert est2.get_params() == est.get_params()
    X, y = iris()
    quiet_fit(est2, X, y)
    assert est2.coefs_[0].dtype == np.float32


def test_joblib_round_trip(tmp_path):
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(**_params("adam")), X, y)
    path = tmp_path / "mlp.joblib"
    joblib.dump(est, path)
    est2 = joblib.load(path)
    assert_array_equal(est2.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_partial_fit_after_unpickle_matches_sklearn(name, solver):
    """After unpickling, partial_fit continues with the optimizer state and the
    parameters the user sees, and the coefs_ the user holds are updated."""
    X, y = _data(name)
    cy, sk = _pair(name, **_params(solver))
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    for est in (cy, sk):
        est.partial_fit(X, y, **kw)
    cy2, sk2 = _roundtrip(cy), _roundtrip(sk)
    before = [c.copy() for c in cy2.coefs_]
    for est in (cy2, sk2):
        est.partial_fit(X[:80], y[:80])
        est.partial_fit(X[80:], y[80:])
    assert_same_fit(cy2, sk2)
    assert_same_predictions(cy2, sk2, X)
    assert not np.allclose(cy2.coefs_[0], before[0])
    _assert_predict_uses_coefs(cy2, X)
    # the original was left alone
    assert_same_params(cy, sk)


def test_held_reference_follows_training_or_is_stale_like_sklearn():
    """A user holding est.coefs_ sees what the estimator reports after partial_fit.

    scikit-learn updates the arrays in place during stochastic training, so an array
    obtained before partial_fit shows the new values. cymlp must do the same.
    """
    X, y = iris()
    cy, sk = _pair("MLPClassifier", **_params("sgd"))
    for est in (cy, sk):
        est.partial_fit(X, y, classes=[0, 1, 2])
    held_cy, held_sk = cy.coefs_[0], sk.coefs_[0]
    for est in (cy, sk):
        est.partial_fit(X, y)
    assert_allclose(held_sk, sk.coefs_[0])  # reference behaviour
    assert_allclose(held_cy, cy.coefs_[0], rtol=1e-12)
    assert_allclose(held_cy, held_sk, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------------------
# deepcopy and clone
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_is_independent(name):
    X, y = _data(name)
    est = getattr(cymlp, name)(**_params("adam"))
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    est.partial_fit(X, y, **kw)
    snapshot = [c.copy() for c in est.coefs_ + est.intercepts_]
    twin = copy.deepcopy(est)
    assert_array_equal(_output(twin, X), _output(est, X))

    twin.partial_fit(X, y)
    # the original did not move
    for a, b in zip(est.coefs_ + est.intercepts_, snapshot):
        assert_array_equal(a, b)
    # the copy moved exactly as the original would have
    est.partial_fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, twin.coefs_ + twin.intercepts_):
        assert_array_equal(a, b)
    _assert_predict_uses_coefs(twin, X)


def test_copy_copy_then_fit_does_not_break_original():
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(**_params("adam")), X, y)
    before = est.predict_proba(X)
    shallow = copy.copy(est)
    quiet_fit(shallow, X[::-1], y[::-1])
    # fit rebinds coefs_ (as in scikit-learn) rather than writing into shared arrays
    assert_array_equal(est.predict_proba(X), before)


@pytest.mark.parametrize("name", NAMES)
def test_clone(name):
    X, y = _data(name)
    est = quiet_fit(getattr(cymlp, name)(**_params("sgd"), dtype=np.float32), X, y)
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert not hasattr(c, "coefs_")
    quiet_fit(c, X, y)
    for a, b in zip(c.coefs_ + c.intercepts_, est.coefs_ + est.intercepts_):
        assert a.dtype == np.float32
        assert_array_equal(a, b)


# --------------------------------------------------------------------------------------
# users assigning coefs_ / intercepts_
# --------------------------------------------------------------------------------------


def _new_values(est, seed):
    rng = np.random.RandomState(seed)
    coefs = [rng.uniform(-0.5, 0.5, c.shape).astype(c.dtype) for c in est.coefs_]
    intercepts = [rng.uniform(-0.5, 0.5, b.shape).astype(b.dtype) for b in est.intercepts_]
    return coefs, intercepts


@pytest.mark.parametrize("how", ["rebind-lists", "replace-items", "in-place"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name", NAMES)
def test_assigned_parameters_are_used_by_partial_fit(name, solver, how):
    X, y = _data(name)
    cy, sk = _pair(name, **_params(solver))
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    for est in (cy, sk):
        est.partial_fit(X, y, **kw)
    coefs, intercepts = _new_values(sk, seed=42)
    for est in (cy, sk):
        if how == "rebind-lists":
            est.coefs_ = [c.copy() for c in coefs]
            est.intercepts_ = [b.copy() for b in intercepts]
        elif how == "replace-items":
            for i in range(len(coefs)):
                est.coefs_[i] = coefs[i].copy()
                est.intercepts_[i] = intercepts[i].copy()
        else:
            for i in range(len(coefs)):
                est.coefs_[i][...] = coefs[i]
                est.intercepts_[i][...] = intercepts[i]
    # predict sees the assigned values
    assert_same_predictions(cy, sk, X, rtol=1e-12, atol=1e-14)
    _assert_predict_uses_coefs(cy, X)
    # partial_fit starts from them
    for est in (cy, sk):
        est.partial_fit(X, y)
    assert_same_fit(cy, sk)
    assert_same_predictions(cy, sk, X)
    _assert_predict_uses_coefs(cy, X)


@pytest.mark.parametrize("name", NAMES)
def test_assigned_parameters_with_warm_start_fit(name):
    X, y = _data(name)
    cy, sk = _pair(name, **_params("sgd", warm_start=True))
    for est in (cy, sk):
        quiet_fit(est, X, y)
    coefs, intercepts = _new_values(sk, seed=3)
    for est in (cy, sk):
        est.coefs_ = [c.copy() for c in coefs]
        est.intercepts_ = [b.copy() for b in intercepts]
        quiet_fit(est, X, y)
    assert_same_fit(cy, sk)


def test_assigned_float64_arrays_on_float32_model():
    """Assigning arrays of another dtype: predictions follow the assigned values."""
    X, y = iris()
    X32 = X.astype(np.float32)
    cy, sk = _pair("MLPClassifier", **_params("adam"))
    for est in (cy, sk):
        est.partial_fit(X32, y, classes=[0, 1, 2])
    coefs, intercepts = _new_values(sk, seed=1)
    for est in (cy, sk):
        est.coefs_ = [c.astype(np.float64) for c in coefs]
        est.intercepts_ = [b.astype(np.float64) for b in intercepts]
    assert_allclose(cy.predict_proba(X32), sk.predict_proba(X32), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------------------
# set_params then fit
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_set_params_then_fit(name):
    X, y = _data(name)
    cy, sk = _pair(name, **_params("adam"))
    changes = [
        dict(hidden_layer_sizes=(3,), alpha=0.1),
        dict(solver="sgd", activation="tanh", momentum=0.5),
        dict(solver="lbfgs", hidden_layer_sizes=(5, 5)),
        dict(solver="adam", hidden_layer_sizes=(), early_stopping=True),
    ]
    for change in changes:
        for est in (cy, sk):
            est.set_params(**change)
            quiet_fit(est, X, y)
        tol = (1e-5, 1e-7) if change.get("solver") == "lbfgs" else (1e-6, 1e-9)
        assert_same_fit(cy, sk, rtol=tol[0], atol=tol[1])
        assert_same_predictions(cy, sk, X, rtol=tol[0], atol=tol[1])


def test_set_dtype_then_fit():
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(**_params("adam")), X, y)
    assert est.coefs_[0].dtype == np.float64
    est.set_params(dtype=np.float32)
    quiet_fit(est, X, y)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X).dtype == np.float32


def test_set_params_warm_start_keeps_weights():
    X, y = regression()
    cy, sk = _pair("MLPRegressor", **_params("sgd"))
    for est in (cy, sk):
        quiet_fit(est, X, y)
        est.set_params(warm_start=True, max_iter=2, learning_rate_init=0.005)
        quiet_fit(est, X, y)
    assert_same_fit(cy, sk)


def test_pickle_to_buffer_twice_is_stable():
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(**_params("sgd")), X, y)
    buf = io.BytesIO()
    pickle.dump(est, buf)
    first = buf.getvalue()
    est2 = pickle.loads(first)
    assert_array_equal(_roundtrip(est2).predict_proba(X), est.predict_proba(X))
