"""cymlp against scikit-learn, started from the same random_state and parameters.

In float64 cymlp reproduces scikit-learn's computation: the same initial weights, the
same validation split, the same shuffles, the same optimizer updates. Everything a fit
leaves behind (coefs_, intercepts_, loss_curve_, n_iter_, ...) and the predictions must
agree to rtol 1e-6 (atol 1e-9 near zero). L-BFGS amplifies rounding, so it is compared
more loosely. float32 is compared loosely as well.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn import neural_network as sknn
from sklearn.datasets import load_digits, make_classification

import cymlp

from _common import (
    ATOL,
    RTOL,
    assert_same_fit,
    assert_same_params,
    assert_same_predictions,
    binary,
    counts,
    iris,
    multilabel,
    multioutput,
    quiet_fit,
    quiet_partial_fit,
    regression,
    sample_weights,
)

DATA = {
    "multiclass": iris,
    "binary": binary,
    "multilabel": multilabel,
    "regression": regression,
    "multioutput": multioutput,
    "poisson": counts,
}
CLASSIFICATION = {"multiclass", "binary", "multilabel"}


def _pair(task, **params):
    if task in CLASSIFICATION:
        return cymlp.MLPClassifier(**params), sknn.MLPClassifier(**params)
    if task == "poisson":
        params = {"loss": "poisson", **params}
    return cymlp.MLPRegressor(**params), sknn.MLPRegressor(**params)


def _fit_pair(task, weighted=False, rtol=RTOL, atol=ATOL, **params):
    X, y = DATA[task]()
    cy, sk = _pair(task, **params)
    kw = {"sample_weight": sample_weights(X.shape[0])} if weighted else {}
    quiet_fit(sk, X, y, **kw)
    quiet_fit(cy, X, y, **kw)
    assert_same_fit(cy, sk, rtol=rtol, atol=atol)
    assert_same_predictions(cy, sk, X, rtol=rtol, atol=atol)
    return cy, sk


SMALL = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=6)

# --------------------------------------------------------------------------------------
# the optimizers and schedules, on every head
# --------------------------------------------------------------------------------------

SOLVERS = {
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.05, batch_size=32),
    "sgd-momentum": dict(
        solver="sgd", learning_rate_init=0.05, batch_size=32, nesterovs_momentum=False
    ),
    "sgd-plain": dict(solver="sgd", learning_rate_init=0.05, batch_size=32, momentum=0.0),
    "sgd-invscaling": dict(
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.1,
        power_t=0.25,
        batch_size=32,
    ),
    "adam": dict(solver="adam", learning_rate_init=0.01, batch_size=32),
    "adam-params": dict(
        solver="adam",
        learning_rate_init=0.02,
        beta_1=0.8,
        beta_2=0.99,
        epsilon=1e-6,
        batch_size=50,
    ),
}


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("task", list(DATA))
def test_stochastic_solvers_every_head(task, solver):
    _fit_pair(task, **{**SMALL, **SOLVERS[solver]})


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_shuffle_on_and_off(task, solver, shuffle):
    _fit_pair(task, shuffle=shuffle, **{**SMALL, **SOLVERS[solver]})


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_sgd_adaptive_learning_rate(task):
    """tol is so large that every epoch is stale: eta is divided by 5 every
    n_iter_no_change + 1 epochs until it falls to 1e-6 and training stops early."""
    cy, sk = _fit_pair(
        task,
        hidden_layer_sizes=(6,),
        random_state=1,
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.1,
        tol=10.0,
        n_iter_no_change=1,
        batch_size=50,
        max_iter=40,
    )
    assert sk.n_iter_ < 40  # the schedule, not max_iter, stopped both


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_stopping_on_training_loss(task, solver):
    """With a large tol training stops after n_iter_no_change + 1 stale epochs."""
    cy, sk = _fit_pair(
        task,
        hidden_layer_sizes=(6,),
        random_state=2,
        tol=0.5,
        n_iter_no_change=3,
        max_iter=50,
        **{k: v for k, v in SOLVERS[solver].items()},
    )
    assert sk.n_iter_ < 50


def test_n_iter_no_change_inf_runs_to_max_iter():
    cy, sk = _fit_pair(
        "multiclass",
        hidden_layer_sizes=(5,),
        random_state=0,
        tol=0.5,
        n_iter_no_change=np.inf,
        max_iter=7,
        solver="sgd",
        learning_rate_init=0.05,
    )
    assert cy.n_iter_ == 7


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("task", ["multiclass", "binary", "regression", "poisson"])
def test_hidden_activations_two_layers(task, activation):
    _fit_pair(
        task,
        hidden_layer_sizes=(7, 5),
        activation=activation,
        random_state=3,
        max_iter=5,
        solver="adam",
        learning_rate_init=0.01,
        batch_size=40,
    )


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
@pytest.mark.parametrize("task", list(DATA))
def test_no_hidden_layer(task, solver):
    params = SOLVERS.get(solver, dict(solver="lbfgs"))
    rtol, atol = (1e-5, 1e-7) if solver == "lbfgs" else (RTOL, ATOL)
    cy, sk = _fit_pair(
        task,
        hidden_layer_sizes=(),
        random_state=0,
        max_iter=5,
        rtol=rtol,
        atol=atol,
        **params,
    )
    assert cy.n_layers_ == 2


@pytest.mark.parametrize("hls", [5, [6, 4], np.array([4]), (3, 3, 3)])
def test_hidden_layer_sizes_forms(hls):
    _fit_pair(
        "multiclass",
        hidden_layer_sizes=hls,
        random_state=0,
        max_iter=4,
        solver="adam",
        learning_rate_init=0.01,
    )


@pytest.mark.parametrize("batch_size", [1, 7, "auto", 150])
def test_batch_sizes(batch_size):
    _fit_pair(
        "multiclass",
        hidden_layer_sizes=(5,),
        random_state=4,
        max_iter=3,
        solver="sgd",
        learning_rate_init=0.01,
        batch_size=batch_size,
    )


@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_alpha(task, alpha):
    _fit_pair(task, alpha=alpha, **{**SMALL, **SOLVERS["adam"]})


def test_default_parameters_multiclass():
    """scikit-learn's defaults: (100,) relu, adam, batch 'auto'."""
    _fit_pair("multiclass", random_state=0, max_iter=10)


def test_random_state_instance():
    X, y = iris()
    cy = cymlp.MLPClassifier((6,), random_state=np.random.RandomState(7), max_iter=4)
    sk = sknn.MLPClassifier((6,), random_state=np.random.RandomState(7), max_iter=4)
    quiet_fit(sk, X, y)
    quiet_fit(cy, X, y)
    assert_same_fit(cy, sk)


def test_string_labels():
    X, y = iris()
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    cy, sk = _pair("multiclass", **SMALL, solver="adam", learning_rate_init=0.01)
    quiet_fit(sk, X, labels)
    quiet_fit(cy, X, labels)
    assert_same_fit(cy, sk)
    assert_same_predictions(cy, sk, X)


def test_binary_with_string_labels_and_multiclass_subset():
    X, y = binary()
    labels = np.where(y == 1, "benign", "malignant")
    cy, sk = _pair("binary", **SMALL, solver="sgd", learning_rate_init=0.05)
    quiet_fit(sk, X, labels)
    quiet_fit(cy, X, labels)
    assert_same_fit(cy, sk)
    assert_same_predictions(cy, sk, X)


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
def test_larger_network_digits(solver):
    """Layers large enough for the engine's blocked / threaded GEMM paths."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    params = SOLVERS.get(solver, dict(solver="lbfgs"))
    params = {**params, "batch_size": 200} if solver != "lbfgs" else params
    hidden = (256, 128) if solver != "lbfgs" else (128, 64)
    cy, sk = _pair(
        "multiclass",
        hidden_layer_sizes=hidden,
        random_state=0,
        max_iter=2 if solver != "lbfgs" else 4,
        **params,
    )
    quiet_fit(sk, X, y)
    quiet_fit(cy, X, y)
    rtol, atol = (LBFGS_RTOL, LBFGS_ATOL) if solver == "lbfgs" else (RTOL, ATOL)
    assert_same_fit(cy, sk, rtol=rtol, atol=atol)
    assert_same_predictions(cy, sk, X, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------
# sample_weight
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam", "lbfgs"])
@pytest.mark.parametrize("task", list(DATA))
def test_sample_weight(task, solver):
    params = SOLVERS.get(solver, dict(solver="lbfgs"))
    rtol, atol = (1e-5, 1e-7) if solver == "lbfgs" else (RTOL, ATOL)
    _fit_pair(task, weighted=True, rtol=rtol, atol=atol, **{**SMALL, "max_iter": 5, **params})


def test_sample_weight_changes_the_fit():
    """Guard against a parity test that would pass by ignoring sample_weight."""
    X, y = iris()
    params = {**SMALL, **SOLVERS["adam"]}
    a = quiet_fit(cymlp.MLPClassifier(**params), X, y)
    b = quiet_fit(cymlp.MLPClassifier(**params), X, y, sample_weight=sample_weights(150))
    assert not np.allclose(a.coefs_[0], b.coefs_[0], rtol=1e-4)


# --------------------------------------------------------------------------------------
# L-BFGS (looser: the line search amplifies rounding)
# --------------------------------------------------------------------------------------

LBFGS_RTOL, LBFGS_ATOL = 1e-5, 1e-7


@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
@pytest.mark.parametrize("task", list(DATA))
def test_lbfgs(task, activation):
    _fit_pair(
        task,
        solver="lbfgs",
        hidden_layer_sizes=(6,),
        activation=activation,
        random_state=0,
        max_iter=25,
        rtol=LBFGS_RTOL,
        atol=LBFGS_ATOL,
    )


def test_lbfgs_max_fun():
    cy, sk = _fit_pair(
        "multiclass",
        solver="lbfgs",
        hidden_layer_sizes=(6,),
        random_state=0,
        max_iter=200,
        max_fun=12,
        rtol=LBFGS_RTOL,
        atol=LBFGS_ATOL,
    )
    assert sk.n_iter_ < 200


def test_lbfgs_converges_on_tol():
    cy, sk = _fit_pair(
        "regression",
        solver="lbfgs",
        hidden_layer_sizes=(4,),
        random_state=0,
        max_iter=500,
        tol=1e-2,
        rtol=LBFGS_RTOL,
        atol=LBFGS_ATOL,
    )
    assert sk.n_iter_ < 500


# --------------------------------------------------------------------------------------
# early stopping: the same validation split, scores and restored weights
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("task", list(DATA))
def test_early_stopping(task, solver, weighted):
    cy, sk = _fit_pair(
        task,
        weighted=weighted,
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=2,
        tol=0.05,
        hidden_layer_sizes=(6,),
        random_state=5,
        max_iter=15,
        **SOLVERS[solver],
    )
    assert sk.best_loss_ is None
    assert len(sk.validation_scores_) == sk.n_iter_


def test_early_stopping_restores_best_weights_not_last():
    """A configuration where the last epoch is not the best one: restored weights must
    be the best epoch's, exactly as scikit-learn's."""
    X, y = regression()
    params = dict(
        hidden_layer_sizes=(10,),
        solver="sgd",
        learning_rate_init=0.3,
        early_stopping=True,
        validation_fraction=0.3,
        n_iter_no_change=3,
        tol=0.0,
        random_state=0,
        max_iter=30,
        batch_size=20,
    )
    sk = quiet_fit(sknn.MLPRegressor(**params), X, y)
    best = int(np.argmax(sk.validation_scores_))
    assert best < len(sk.validation_scores_) - 1  # precondition of the test
    cy = quiet_fit(cymlp.MLPRegressor(**params), X, y)
    assert_same_fit(cy, sk)
    assert_same_predictions(cy, sk, X)


def test_early_stopping_ties_in_accuracy_are_not_stale():
    """Validation accuracy is discrete: with tol=0 an epoch that only ties the best
    score resets the counter (score < best + tol is False), as in scikit-learn."""
    cy, sk = _fit_pair(
        "multiclass",
        hidden_layer_sizes=(5,),
        solver="sgd",
        learning_rate_init=0.003,
        early_stopping=True,
        validation_fraction=0.2,
        tol=0.0,
        n_iter_no_change=2,
        random_state=0,
        max_iter=20,
    )
    v = sk.validation_scores_
    assert any(v[i] == max(v[:i]) for i in range(1, len(v)))  # ties happen


# --------------------------------------------------------------------------------------
# warm_start and partial_fit
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd-nesterov", "sgd-invscaling", "adam", "lbfgs"])
@pytest.mark.parametrize("task", ["multiclass", "binary", "regression", "multioutput"])
def test_warm_start(task, solver):
    params = SOLVERS.get(solver, dict(solver="lbfgs"))
    rtol, atol = (LBFGS_RTOL, LBFGS_ATOL) if solver == "lbfgs" else (RTOL, ATOL)
    X, y = DATA[task]()
    cy, sk = _pair(
        task, hidden_layer_sizes=(6,), random_state=0, max_iter=3, warm_start=True, **params
    )
    for est in (sk, cy):
        quiet_fit(est, X, y)
        est.set_params(max_iter=4)
        quiet_fit(est, X, y)
    assert_same_fit(cy, sk, rtol=rtol, atol=atol)
    assert_same_predictions(cy, sk, X, rtol=rtol, atol=atol)


def test_warm_start_after_early_stopping_restores_the_best_weights():
    # The one documented difference (coming_from_sklearn.md): scikit-learn's coefs_ after
    # an early-stopping fit are its saved best weights, the same arrays, so a second fit
    # that never beats the old best score ends with its last epoch's weights. cymlp
    # restores the best weights, here still the first fit's; everything else agrees.
    X, y = make_classification(300, 8, n_informative=5, n_classes=3, random_state=0)
    cy, sk = _pair(
        "multiclass",
        hidden_layer_sizes=(10,),
        max_iter=20,
        random_state=0,
        warm_start=True,
        early_stopping=True,
    )
    for est in (sk, cy):
        quiet_fit(est, X, y)
    first = [w.copy() for w in cy.coefs_]
    best = cy.best_validation_score_
    for est in (sk, cy):
        quiet_fit(est, X, y)
    assert cy.best_validation_score_ == best  # no better epoch in the second fit
    assert cy.loss_curve_ == pytest.approx(sk.loss_curve_, rel=RTOL)
    assert cy.validation_scores_ == sk.validation_scores_
    assert cy.n_iter_ == sk.n_iter_
    for w_cy, w_first in zip(cy.coefs_, first):
        assert np.array_equal(w_cy, w_first)
    assert not all(np.allclose(a, b) for a, b in zip(first, sk.coefs_))


def test_warm_start_false_refits_from_scratch():
    X, y = iris()
    params = {**SMALL, **SOLVERS["adam"]}
    cy, sk = _pair("multiclass", **params)
    for est in (sk, cy):
        quiet_fit(est, X, y)
        quiet_fit(est, X[::-1], y[::-1])
    assert_same_fit(cy, sk)


@pytest.mark.parametrize("solver", ["sgd-nesterov", "sgd-momentum", "sgd-invscaling", "adam"])
@pytest.mark.parametrize("task", list(DATA))
def test_partial_fit(task, solver):
    X, y = DATA[task]()
    params = {**SMALL, **SOLVERS[solver]}
    cy, sk = _pair(task, **params)
    if task in CLASSIFICATION:  # classes= is required on the first call
        kw = {"classes": np.unique(y) if y.ndim == 1 else np.arange(y.shape[1])}
    else:
        kw = {}
    n = X.shape[0]
    chunks = [slice(0, n // 2), slice(n // 2, n), slice(0, n)]
    for est in (sk, cy):
        for i, s in enumerate(chunks):
            quiet_partial_fit(est, X[s], y[s], **(kw if i == 0 else {}))
    assert_same_fit(cy, sk)
    assert_same_predictions(cy, sk, X)


def test_partial_fit_with_sample_weight():
    X, y = iris()
    cy, sk = _pair("multiclass", **{**SMALL, **SOLVERS["sgd-nesterov"]})
    sw = sample_weights(150)
    for est in (sk, cy):
        est.partial_fit(X, y, classes=[0, 1, 2], sample_weight=sw)
        est.partial_fit(X[:60], y[:60], sample_weight=sw[:60])
    assert_same_fit(cy, sk)


def test_partial_fit_classes_not_all_present_in_first_batch():
    X, y = iris()
    first = y < 2  # class 2 missing from the first call
    cy, sk = _pair("multiclass", **{**SMALL, **SOLVERS["adam"]})
    for est in (sk, cy):
        est.partial_fit(X[first], y[first], classes=np.array([0, 1, 2]))
        est.partial_fit(X, y)
    assert_same_fit(cy, sk)
    assert_same_predictions(cy, sk, X)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_partial_fit_after_fit(task):
    X, y = DATA[task]()
    cy, sk = _pair(task, **{**SMALL, **SOLVERS["sgd-nesterov"]})
    for est in (sk, cy):
        quiet_fit(est, X, y)
        est.partial_fit(X[:70], y[:70])
        est.partial_fit(X[70:], y[70:])
    assert_same_fit(cy, sk)


def test_fit_after_partial_fit_restarts():
    X, y = regression()
    cy, sk = _pair("regression", **{**SMALL, **SOLVERS["adam"]})
    for est in (sk, cy):
        est.partial_fit(X, y)
        quiet_fit(est, X, y)
    assert_same_fit(cy, sk)


def test_regressor_partial_fit_lbfgs_quirk():
    """MLPRegressor.partial_fit exists with lbfgs and runs a whole lbfgs fit."""
    X, y = regression()
    params = dict(solver="lbfgs", hidden_layer_sizes=(5,), random_state=0, max_iter=20)
    cy, sk = _pair("regression", **params)
    for est in (sk, cy):
        quiet_partial_fit(est, X, y)
    assert_same_fit(cy, sk, rtol=LBFGS_RTOL, atol=LBFGS_ATOL)
    assert cy.n_iter_ > 1


# --------------------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["sgd-nesterov", "adam"])
@pytest.mark.parametrize("task", ["multiclass", "binary", "regression", "poisson"])
def test_float32_input_matches_sklearn_float32(task, solver):
    X, y = DATA[task]()
    X32 = X.astype(np.float32)
    cy, sk = _pair(task, **{**SMALL, "max_iter": 2, **SOLVERS[solver]})
    quiet_fit(sk, X32, y)
    quiet_fit(cy, X32, y)
    for c in sk.coefs_ + sk.intercepts_:
        assert c.dtype == np.float32
    assert_same_params(cy, sk, rtol=1e-3, atol=1e-5)
    assert_allclose(cy.loss_curve_, sk.loss_curve_, rtol=1e-3)
    assert_same_predictions(cy, sk, X32, rtol=1e-3, atol=1e-5)


def test_float32_lbfgs_loosely():
    """scikit-learn's lbfgs hands float64 parameters back even for float32 data
    (scipy's minimize works in float64); the dtype is not compared, the values are."""
    X, y = iris()
    X32 = X.astype(np.float32)
    cy, sk = _pair(
        "multiclass", solver="lbfgs", hidden_layer_sizes=(5,), random_state=0, max_iter=5
    )
    quiet_fit(sk, X32, y)
    quiet_fit(cy, X32, y)
    assert cy.coefs_[0].dtype in (np.float32, np.float64)
    assert_same_params(cy, sk, rtol=1e-2, atol=1e-3, check_dtype=False)


@pytest.mark.parametrize("Est", [cymlp.MLPClassifier, cymlp.MLPRegressor])
def test_dtype_float32_with_float64_input(Est):
    X, y = iris()
    params = {**SMALL, "max_iter": 2, **SOLVERS["adam"]}
    est = quiet_fit(Est(dtype=np.float32, **params), X, y)
    for c in est.coefs_ + est.intercepts_:
        assert c.dtype == np.float32
    # and it is the float32 computation: close to scikit-learn on X.astype(float32)
    SkEst = sknn.MLPClassifier if Est is cymlp.MLPClassifier else sknn.MLPRegressor
    sk = quiet_fit(SkEst(**params), X.astype(np.float32), y)
    assert_same_params(est, sk, rtol=1e-3, atol=1e-5)
    out = est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)
    assert out.dtype == np.float32


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_dtype_float64_with_float32_input(task):
    """dtype=np.float64 upcasts float32 data: exactly scikit-learn on the upcast data."""
    X, y = DATA[task]()
    X32 = X.astype(np.float32)
    params = {**SMALL, **SOLVERS["sgd-nesterov"]}
    cy, sk = _pair(task, **params)
    cy.set_params(dtype=np.float64)
    quiet_fit(sk, X32.astype(np.float64), y)
    quiet_fit(cy, X32, y)
    assert_same_fit(cy, sk)


@pytest.mark.parametrize("X_dtype", [np.int64, np.float16, np.int32])
def test_other_input_dtypes_compute_in_float64(X_dtype):
    X, y = iris()
    Xd = np.round(X * 4).astype(X_dtype)
    cy, sk = _pair("multiclass", **{**SMALL, **SOLVERS["adam"]})
    quiet_fit(sk, Xd, y)
    quiet_fit(cy, Xd, y)
    assert cy.coefs_[0].dtype == np.float64
    assert_same_fit(cy, sk)
