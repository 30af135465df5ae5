"""cymlp.from_sklearn and estimator.to_sklearn: fitted models both ways.

The converted model has the same parameters, the same weights (bit for bit, in their
dtype), classes and fitted attributes, predicts the same to rounding (float64: rtol
1e-10), and trains on as the source would: for sgd and adam the optimizer state is
carried over, so one `partial_fit` on each side gives the same weights (to the parity
tolerance of cymlp against scikit-learn, see test_sklearn_parity.py).
"""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sknn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

import cymlp

from _common import (
    ATOL,
    RTOL,
    assert_same_fit,
    binary,
    counts,
    iris,
    multilabel,
    multioutput,
    quiet_fit,
    quiet_partial_fit,
    regression,
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
PREDICT_RTOL = {np.float64: 1e-10, np.float32: 1e-5}
PREDICT_ATOL = {np.float64: 1e-14, np.float32: 1e-6}
# every scikit-learn attribute a fit leaves behind (where the solver sets it)
ATTRIBUTES = (
    "n_features_in_",
    "n_outputs_",
    "n_layers_",
    "out_activation_",
    "n_iter_",
    "t_",
    "loss_",
    "best_loss_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "_no_improvement_count",
)
SOLVERS = {
    "adam": dict(solver="adam", learning_rate_init=0.01, batch_size=32),
    "sgd": dict(solver="sgd", learning_rate_init=0.05, batch_size=32),
    "lbfgs": dict(solver="lbfgs"),
}


def _classes(task):
    if task in CLASSIFICATION:
        return cymlp.MLPClassifier, sknn.MLPClassifier
    return cymlp.MLPRegressor, sknn.MLPRegressor


def _params(task, solver, **extra):
    params = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=5, **SOLVERS[solver])
    if task == "poisson":
        params["loss"] = "poisson"
    return {**params, **extra}


def _data(task, dtype=np.float64):
    X, y = DATA[task]()
    return X.astype(dtype), y


def _fitted_sklearn(task, solver="adam", dtype=np.float64, **extra):
    X, y = _data(task, dtype)
    return quiet_fit(_classes(task)[1](**_params(task, solver, **extra)), X, y)


def _fitted_cymlp(task, solver="adam", dtype=np.float64, **extra):
    X, y = _data(task, dtype)
    return quiet_fit(_classes(task)[0](**_params(task, solver, **extra)), X, y)


def assert_same_attributes(a, b):
    for name in ATTRIBUTES:
        assert hasattr(a, name) == hasattr(b, name), name
        if hasattr(b, name):
            x, y = getattr(a, name), getattr(b, name)
            if isinstance(y, list):
                assert isinstance(x, list) and x is not y, name
            assert x == y if not isinstance(y, list) else list(x) == list(y), name
    if hasattr(b, "classes_"):
        assert_array_equal(a.classes_, b.classes_)
        assert a._label_binarizer.y_type_ == b._label_binarizer.y_type_
        assert a._label_binarizer is not b._label_binarizer
    for name in ("coefs_", "intercepts_"):
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape
            assert_array_equal(x, y)
            assert not np.shares_memory(x, y)


def assert_same_predictions(a, b, X, dtype):
    rtol, atol = PREDICT_RTOL[dtype], PREDICT_ATOL[dtype]
    if hasattr(b, "predict_proba"):
        pa, pb = a.predict_proba(X), b.predict_proba(X)
        assert pa.dtype == pb.dtype and pa.shape == pb.shape
        assert_allclose(pa, pb, rtol=rtol, atol=atol)
    ya, yb = a.predict(X), b.predict(X)
    assert ya.dtype == yb.dtype and ya.shape == yb.shape
    if np.issubdtype(yb.dtype, np.floating):
        assert_allclose(ya, yb, rtol=rtol, atol=atol)
    else:
        assert_array_equal(ya, yb)


# --------------------------------------------------------------------------------------
# from scikit-learn
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("task", list(DATA))
def test_from_sklearn(task, solver, dtype):
    sk = _fitted_sklearn(task, solver, dtype)
    cy = cymlp.from_sklearn(sk)
    assert type(cy) is _classes(task)[0]
    # scikit-learn's parameters, cymlp's own at their defaults
    sk_params = sk.get_params()
    cy_params = cy.get_params()
    for name, value in sk_params.items():
        assert cy_params[name] == value, name
    defaults = type(cy)().get_params()
    for name in set(cy_params) - set(sk_params):
        assert cy_params[name] == defaults[name], name
    assert_same_attributes(cy, sk)
    # the weights keep their dtype (scikit-learn's lbfgs leaves float64 weights whatever X)
    assert cy.coefs_[0].dtype == (np.float64 if solver == "lbfgs" else dtype)
    X, _ = _data(task, dtype)
    assert_same_predictions(cy, sk, X, dtype)
    # scikit-learn computes float64 input with float32 weights in float64; so does cymlp
    assert_same_predictions(cy, sk, X.astype(np.float64), np.float64)
    # the source is untouched, and the two do not share memory
    sk.coefs_[0][...] = 0
    assert np.any(cy.coefs_[0] != 0)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("task", list(DATA))
def test_from_sklearn_partial_fit_continues(task, solver):
    """The optimizer state goes along: one more epoch on each side agrees (as a cymlp
    model and a scikit-learn model trained side by side do)."""
    sk = _fitted_sklearn(task, solver)
    cy = cymlp.from_sklearn(sk)
    X, y = _data(task)
    quiet_partial_fit(sk, X, y)
    quiet_partial_fit(cy, X, y)
    assert_same_fit(cy, sk, rtol=RTOL, atol=ATOL)
    assert cy.n_iter_ == 1 and cy.t_ == 6 * X.shape[0]


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_from_sklearn_optimizer_state(solver):
    sk = _fitted_sklearn("multiclass", solver, learning_rate="invscaling")
    cy = cymlp.from_sklearn(sk)
    opt, sk_opt = cy._optimizer, sk._optimizer
    assert opt.kind == solver
    assert opt.learning_rate == sk_opt.learning_rate
    if solver == "adam":
        assert opt.t == sk_opt.t > 0
        states = [(opt.m, sk_opt.ms), (opt.v, sk_opt.vs)]
    else:
        assert opt.learning_rate < sk.learning_rate_init  # invscaling moved it
        states = [(opt.velocity, sk_opt.velocities)]
    for flat, parts in states:
        assert_array_equal(flat, np.concatenate([p.ravel() for p in parts]))


def test_from_sklearn_fresh_optimizer_when_state_is_unreadable():
    sk = _fitted_sklearn("multiclass", "adam")
    del sk._optimizer.ms  # as if a scikit-learn release stored it differently
    with pytest.warns(UserWarning, match="fresh optimizer"):
        cy = cymlp.from_sklearn(sk)
    assert not hasattr(cy, "_optimizer")
    X, y = _data("multiclass")
    quiet_partial_fit(cy, X, y)
    assert cy._optimizer.t == int(np.ceil(X.shape[0] / 32))


ES_PARAMS = dict(early_stopping=True, warm_start=True, max_iter=4)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_from_sklearn_early_stopping_warm_start(task):
    """The validation scores, best score, stopping counter and best weights go along: a
    warm-started fit of the converted model continues as one of a cymlp model trained
    like the scikit-learn one. (Compared with cymlp, not scikit-learn: after an
    early-stopped fit scikit-learn's best weights are its current ones, the same lists,
    so a warm-started fit that never beats the old best score ends with its last weights
    where cymlp restores the old best.)"""
    sk = _fitted_sklearn(task, "adam", **ES_PARAMS)
    native = _fitted_cymlp(task, "adam", **ES_PARAMS)
    cy = cymlp.from_sklearn(sk)
    assert sk.validation_scores_ and cy.validation_scores_ == sk.validation_scores_
    assert cy.best_loss_ is None and cy.best_validation_score_ == sk.best_validation_score_
    assert_same_fit(cy, native)
    X, y = _data(task)
    quiet_fit(native, X, y)
    quiet_fit(cy, X, y)
    assert_same_fit(cy, native)
    assert len(cy.validation_scores_) == 8


def test_from_sklearn_string_labels_feature_names_and_model_file(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = iris()
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    frame = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    sk = quiet_fit(
        sknn.MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0), frame, labels
    )
    cy = cymlp.from_sklearn(sk)
    assert_array_equal(cy.feature_names_in_, ["sl", "sw", "pl", "pw"])
    assert_array_equal(cy.predict(frame), sk.predict(frame))
    with pytest.warns(UserWarning, match="feature names"):
        cy.predict(X)  # fitted with names, given none: scikit-learn's warning
    cy.save(tmp_path / "m.cymlp")
    assert_array_equal(
        cymlp.load(tmp_path / "m.cymlp").predict_proba(frame), cy.predict_proba(frame)
    )
    back = cy.to_sklearn()
    assert_array_equal(back.feature_names_in_, sk.feature_names_in_)
    assert_array_equal(back.predict(frame), sk.predict(frame))


def test_from_sklearn_random_state_is_copied_not_shared():
    rs = np.random.RandomState(0)
    X, y = iris()
    sk = quiet_fit(sknn.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=rs), X, y)
    cy = cymlp.from_sklearn(sk)
    assert cy.random_state is not sk.random_state
    assert cy.random_state.get_state()[1].tolist() == sk.random_state.get_state()[1].tolist()


@pytest.mark.parametrize("hidden", [(), (7, 5)], ids=["no-hidden", "two-hidden"])
def test_from_sklearn_layer_shapes(hidden):
    X, y = iris()
    sk = quiet_fit(
        sknn.MLPClassifier(
            hidden_layer_sizes=hidden, activation="tanh", max_iter=5, random_state=0
        ),
        X,
        y,
    )
    cy = cymlp.from_sklearn(sk)
    assert cy._network.layer_units == [4, *hidden, 3]
    assert_same_predictions(cy, sk, X, np.float64)


def test_from_sklearn_rejects_non_mlp_and_unfitted():
    X, y = iris()
    with pytest.raises(TypeError, match="MLPClassifier or MLPRegressor"):
        cymlp.from_sklearn(LogisticRegression().fit(X, y))
    with pytest.raises(TypeError, match="MLPClassifier or MLPRegressor"):
        cymlp.from_sklearn("model.pkl")
    with pytest.raises(TypeError, match="cymlp MLPClassifier"):
        cymlp.from_sklearn(quiet_fit(cymlp.MLPClassifier(max_iter=2), X, y))
    for est in (sknn.MLPClassifier(), sknn.MLPRegressor()):
        with pytest.raises(NotFittedError):
            cymlp.from_sklearn(est)


def test_from_sklearn_rejects_inconsistent_weights():
    sk = _fitted_sklearn("multiclass")
    sk.coefs_[1] = sk.coefs_[1][:4]
    with pytest.raises(ValueError, match="do not chain"):
        cymlp.from_sklearn(sk)
    sk = _fitted_sklearn("multiclass")
    sk.out_activation_ = "softsign"
    with pytest.raises(ValueError, match="out_activation_"):
        cymlp.from_sklearn(sk)
    sk = _fitted_sklearn("multiclass")
    sk.n_layers_ = 4
    with pytest.raises(ValueError, match="n_layers_"):
        cymlp.from_sklearn(sk)
    sk = _fitted_sklearn("multiclass")
    sk.n_features_in_ = 5
    with pytest.raises(ValueError, match="n_features_in_"):
        cymlp.from_sklearn(sk)
    sk = _fitted_sklearn("multiclass")
    sk.intercepts_ = sk.intercepts_[:1]
    with pytest.raises(ValueError, match="as many"):
        cymlp.from_sklearn(sk)


def test_from_sklearn_odd_dtypes_and_optimizer_sizes():
    """Weights a user assigned in another dtype become float64; an optimizer state that
    does not fit the weights is not transferred."""
    sk = _fitted_sklearn("regression", "sgd")
    sk.coefs_ = [c.astype(np.float16) for c in sk.coefs_]
    sk._optimizer.velocities = sk._optimizer.velocities[:1]
    X, _ = regression()
    with pytest.warns(UserWarning, match="optimizer values for"):
        cy = cymlp.from_sklearn(sk)
    assert cy.coefs_[0].dtype == np.float64
    assert_allclose(cy.predict(X), sk.predict(X), rtol=1e-3)
    assert not hasattr(cy, "_optimizer")


def test_from_sklearn_subclass_and_unknown_parameter():
    class Mine(sknn.MLPRegressor):
        def __init__(self, hidden_layer_sizes=(4,), max_iter=3, random_state=0, extra=1):
            super().__init__(
                hidden_layer_sizes=hidden_layer_sizes, max_iter=max_iter, random_state=random_state
            )
            self.extra = extra

    X, y = regression()
    sk = quiet_fit(Mine(), X, y)
    with pytest.warns(UserWarning, match="no parameters extra"):
        cy = cymlp.from_sklearn(sk)
    assert type(cy) is cymlp.MLPRegressor
    assert_same_predictions(cy, sk, X, np.float64)


# --------------------------------------------------------------------------------------
# to scikit-learn
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("task", list(DATA))
def test_to_sklearn(task, solver, dtype):
    cy = _fitted_cymlp(task, solver, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # default cymlp-only parameters: nothing to warn of
        sk = cy.to_sklearn()
    assert type(sk) is _classes(task)[1]
    for name, value in sk.get_params().items():
        assert cy.get_params()[name] == value, name
    assert_same_attributes(sk, cy)
    X, _ = _data(task, dtype)
    assert_same_predictions(sk, cy, X, dtype)
    assert_same_predictions(sk, cy, X.astype(np.float64), np.float64)
    # scikit-learn's own view of it: fitted, and a round trip gives the same model
    y = _data(task)[1]
    assert sk.score(X, y) == pytest.approx(cy.score(X, y), rel=PREDICT_RTOL[dtype])
    again = cymlp.from_sklearn(sk)
    assert_same_attributes(again, cy)
    assert_array_equal(again._best_params, cy._best_params)
    pickle.loads(pickle.dumps(sk)).predict(X)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("task", list(DATA))
def test_to_sklearn_partial_fit_continues(task, solver):
    cy = _fitted_cymlp(task, solver)
    sk = cy.to_sklearn()
    X, y = _data(task)
    quiet_partial_fit(sk, X, y)
    quiet_partial_fit(cy, X, y)
    assert_same_fit(cy, sk)


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_to_sklearn_early_stopping_warm_start(task):
    """As above, the other way: the converted model's warm-started fit continues as one
    of a scikit-learn model trained like the cymlp one."""
    cy = _fitted_cymlp(task, "sgd", **ES_PARAMS)
    native = _fitted_sklearn(task, "sgd", **ES_PARAMS)
    sk = cy.to_sklearn()
    assert sk.validation_scores_ == cy.validation_scores_
    assert sk._best_coefs is sk.coefs_  # scikit-learn's own state after early stopping
    assert_same_fit(sk, native)
    X, y = _data(task)
    quiet_fit(sk, X, y)
    quiet_fit(native, X, y)
    assert_same_fit(sk, native)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_to_sklearn_best_weights(early_stopping):
    """The best weights cymlp keeps, as scikit-learn's _best_coefs / _best_intercepts."""
    cy = _fitted_cymlp("regression", "sgd", early_stopping=early_stopping, max_iter=3)
    cy._best_params = cy._best_params + 1.0  # (differs from the current weights)
    sk = cy.to_sklearn()
    best = np.concatenate([a.ravel() for a in sk._best_coefs + sk._best_intercepts])
    assert_array_equal(best, cy._best_params)
    assert sk._best_coefs is not sk.coefs_


def test_to_sklearn_sigmoid_is_logistic():
    X, y = iris()
    cy = quiet_fit(
        cymlp.MLPClassifier(
            hidden_layer_sizes=(6,), activation="sigmoid", max_iter=5, random_state=0
        ),
        X,
        y,
    )
    sk = cy.to_sklearn()
    assert sk.activation == "logistic"
    assert_same_predictions(sk, cy, X, np.float64)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(batch_normalization=True), "batch_normalization=True"),
        (dict(activation="gelu"), "activation='gelu'"),
        (dict(activation="leaky_relu"), "activation='leaky_relu'"),
        (dict(activation="elu"), "activation='elu'"),
        (dict(activation="silu"), "activation='silu'"),
        (dict(activation="softplus"), "activation='softplus'"),
        (dict(solver="adamw"), "solver='adamw'"),
        (dict(solver="rmsprop"), "solver='rmsprop'"),
        (dict(loss="absolute_error"), "loss='absolute_error'"),
        (dict(loss="huber"), "loss='huber'"),
        (dict(activation="gelu", solver="rmsprop"), "activation='gelu'.*solver='rmsprop'"),
    ],
)
def test_to_sklearn_rejects_what_sklearn_cannot_represent(params, match):
    X, y = regression()
    cy = quiet_fit(
        cymlp.MLPRegressor(hidden_layer_sizes=(6,), max_iter=3, random_state=0, **params), X, y
    )
    with pytest.raises(ValueError, match="cannot be converted to scikit-learn.*" + match):
        cy.to_sklearn()


def test_to_sklearn_after_switching_solver():
    """The message's way out: an adamw model handed over with solver='adam'."""
    X, y = regression()
    cy = quiet_fit(
        cymlp.MLPRegressor(hidden_layer_sizes=(6,), solver="adamw", max_iter=3, random_state=0),
        X,
        y,
    )
    sk = cy.set_params(solver="adam").to_sklearn()
    assert sk.solver == "adam" and not hasattr(sk, "_optimizer")
    assert_same_predictions(sk, cy, X, np.float64)


def test_to_sklearn_warns_of_training_only_parameters():
    X, y = iris()
    cy = quiet_fit(
        cymlp.MLPClassifier(
            hidden_layer_sizes=(6,),
            max_iter=3,
            random_state=0,
            dropout=0.2,
            init="he_uniform",
            class_weight="balanced",
        ),
        X,
        y,
    )
    with pytest.warns(UserWarning, match="class_weight='balanced', dropout=0.2, init='he_uniform'"):
        sk = cy.to_sklearn()
    assert not hasattr(sk, "dropout")
    assert_same_predictions(sk, cy, X, np.float64)  # dropout acts in training only
    cy = quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, dtype=np.float32), X, y)
    with pytest.warns(UserWarning, match="dtype=<class 'numpy.float32'>"):
        sk = cy.to_sklearn()
    assert sk.coefs_[0].dtype == np.float32
    assert_same_predictions(sk, cy, X.astype(np.float32), np.float32)


def test_to_sklearn_uses_assigned_weights_and_is_a_copy():
    cy = _fitted_cymlp("regression")
    cy.coefs_[0] = np.ones_like(cy.coefs_[0])  # assigned arrays are honoured
    sk = cy.to_sklearn()
    assert_array_equal(sk.coefs_[0], 1)
    X, _ = regression()
    assert_same_predictions(sk, cy, X, np.float64)
    sk.coefs_[0][...] = 2
    assert_array_equal(cy.coefs_[0], 1)


def test_to_sklearn_parameter_scikit_learn_rejects():
    cy = _fitted_cymlp("regression")
    cy.alpha = -1.0  # (set after fit, never validated by cymlp)
    with pytest.raises(ValueError, match="cannot be converted to this scikit-learn.*alpha"):
        cy.to_sklearn()


def test_to_sklearn_unfitted():
    for est in (cymlp.MLPClassifier(), cymlp.MLPRegressor(), clone(_fitted_cymlp("binary"))):
        with pytest.raises(NotFittedError):
            est.to_sklearn()


def test_to_sklearn_lbfgs_has_no_curves():
    cy = _fitted_cymlp("multiclass", "lbfgs")
    sk = cy.to_sklearn()
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "_optimizer"):
        assert not hasattr(sk, name)
    assert sk.t_ == 0 and sk.n_iter_ == cy.n_iter_
