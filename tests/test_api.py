"""The public surface of cymlp's estimators, compared with scikit-learn's."""

import inspect
import numbers
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sknn
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from threadpoolctl import threadpool_limits

import cymlp

from _common import (
    assert_same_fit,
    assert_same_params,
    assert_same_predictions,
    binary,
    iris,
    multilabel,
    multioutput,
    quiet_fit,
    regression,
)

NAMES = ["MLPClassifier", "MLPRegressor"]
FITTED = [
    "coefs_",
    "intercepts_",
    "loss_",
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "n_iter_",
    "t_",
    "n_layers_",
    "n_outputs_",
    "out_activation_",
    "classes_",
    "n_features_in_",
    "feature_names_in_",
]


def _both(name, **params):
    return getattr(cymlp, name)(**params), getattr(sknn, name)(**params)


def _data(name):
    return iris() if name == "MLPClassifier" else regression()


# --------------------------------------------------------------------------------------
# signatures and parameters
# --------------------------------------------------------------------------------------


# cymlp's own keyword-only parameters (dtype and the Keras-style controls) and defaults
EXTRA_PARAMS = {
    "dtype": None,
    "init": None,
    "dropout": 0.0,
    "batch_normalization": False,
    "weight_decay": 0.01,
    "rho": 0.9,
    "callbacks": None,
}
EXTRA_BY_NAME = {
    "MLPClassifier": {**EXTRA_PARAMS, "class_weight": None},
    "MLPRegressor": {**EXTRA_PARAMS, "huber_delta": 1.0},
}


@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_sklearn_plus_dtype(name):
    sk = list(inspect.signature(getattr(sknn, name)).parameters.values())
    cy = list(inspect.signature(getattr(cymlp, name)).parameters.values())

    def positional(params):
        return [(p.name, p.kind, p.default) for p in params if p.kind != p.KEYWORD_ONLY]

    def keyword_only(params):
        return {p.name: p.default for p in params if p.kind == p.KEYWORD_ONLY}

    # same positional parameters in the same order, with the same defaults
    assert positional(cy) == positional(sk)
    # the rest keyword-only, same defaults, plus cymlp's own
    expected = {**keyword_only(sk), **EXTRA_BY_NAME[name]}
    assert keyword_only(cy) == expected
    assert all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in cy)


@pytest.mark.parametrize("name", NAMES)
def test_get_params_matches_sklearn_plus_dtype(name):
    cy, sk = _both(name)
    expected = {**sk.get_params(), **EXTRA_BY_NAME[name]}
    assert cy.get_params() == expected
    cy.set_params(alpha=0.5, hidden_layer_sizes=(3, 2), dtype=np.float32)
    assert cy.alpha == 0.5 and cy.hidden_layer_sizes == (3, 2) and cy.dtype is np.float32
    c = clone(cy)
    assert c.get_params() == cy.get_params()
    assert "dtype=" in repr(cy)


def test_estimator_kinds_and_tags():
    assert is_classifier(cymlp.MLPClassifier())
    assert is_regressor(cymlp.MLPRegressor())
    for name in NAMES:
        cy, sk = _both(name)
        t_cy, t_sk = get_tags(cy), get_tags(sk)
        assert t_cy.estimator_type == t_sk.estimator_type
        assert t_cy.input_tags.sparse == t_sk.input_tags.sparse is True
        assert t_cy.target_tags.required == t_sk.target_tags.required
        assert t_cy.target_tags.multi_output == t_sk.target_tags.multi_output
        if t_sk.classifier_tags is not None:
            assert t_cy.classifier_tags.multi_label == t_sk.classifier_tags.multi_label
        if t_sk.regressor_tags is not None:
            assert t_cy.regressor_tags is not None


def test_public_names():
    assert hasattr(cymlp, "__version__")
    for name in NAMES:
        assert name in dir(cymlp)


# --------------------------------------------------------------------------------------
# fitted attributes
# --------------------------------------------------------------------------------------


def _kind(v):
    """A type description comparable between cymlp and scikit-learn."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, numbers.Integral):
        return "int"
    if isinstance(v, numbers.Real):
        return "float"
    if isinstance(v, str):
        return "str"
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype, v.shape)
    if isinstance(v, list):
        return ("list", len(v), tuple(_kind(e) for e in v[:3]))
    return type(v).__name__


CONFIGS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.05, max_iter=5),
    "adam-early-stopping": dict(solver="adam", early_stopping=True, max_iter=5),
    "lbfgs": dict(solver="lbfgs", max_iter=5),
}


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("name", NAMES)
def test_fitted_attributes_like_sklearn(name, config):
    X, y = _data(name)
    cy, sk = _both(name, hidden_layer_sizes=(7, 3), random_state=0, **CONFIGS[config])
    quiet_fit(sk, X, y)
    quiet_fit(cy, X, y)
    for attr in FITTED:
        assert hasattr(cy, attr) == hasattr(sk, attr), attr
        if hasattr(sk, attr):
            assert _kind(getattr(cy, attr)) == _kind(getattr(sk, attr)), attr
    assert [c.shape for c in cy.coefs_] == [c.shape for c in sk.coefs_]
    assert [b.shape for b in cy.intercepts_] == [b.shape for b in sk.intercepts_]


def test_attributes_without_early_stopping():
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(5,), random_state=0, max_iter=6), X, y)
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    assert est.best_loss_ == min(est.loss_curve_)
    assert len(est.loss_curve_) == est.n_iter_ == 6
    assert est.loss_ == est.loss_curve_[-1]
    assert est.t_ == 6 * X.shape[0]


@pytest.mark.parametrize("name", NAMES)
def test_attributes_with_early_stopping(name):
    X, y = _data(name)
    est = getattr(cymlp, name)(
        hidden_layer_sizes=(5,), random_state=0, max_iter=6, early_stopping=True
    )
    quiet_fit(est, X, y)
    assert est.best_loss_ is None
    assert isinstance(est.validation_scores_, list)
    assert len(est.validation_scores_) == est.n_iter_ == len(est.loss_curve_)
    assert est.best_validation_score_ == max(est.validation_scores_)
    n_train = X.shape[0] - int(np.ceil(0.1 * X.shape[0]))
    assert est.t_ == est.n_iter_ * n_train


@pytest.mark.parametrize("name", NAMES)
def test_lbfgs_attributes(name):
    X, y = _data(name)
    est = quiet_fit(
        getattr(cymlp, name)(hidden_layer_sizes=(5,), solver="lbfgs", random_state=0, max_iter=10),
        X,
        y,
    )
    for attr in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert not hasattr(est, attr), attr
    assert est.t_ == 0
    assert isinstance(est.loss_, numbers.Real)
    assert 1 <= est.n_iter_ <= 10


def test_hidden_layer_sizes_empty():
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(), random_state=0, max_iter=3), X, y)
    assert est.n_layers_ == 2
    assert [c.shape for c in est.coefs_] == [(4, 3)]
    assert [b.shape for b in est.intercepts_] == [(3,)]
    assert est.predict_proba(X).shape == (150, 3)


# --------------------------------------------------------------------------------------
# targets: binary, multiclass, multilabel, strings, multi-output
# --------------------------------------------------------------------------------------


def test_binary_outputs():
    X, y = binary()
    cy, sk = _both("MLPClassifier", hidden_layer_sizes=(5,), random_state=0, max_iter=5)
    quiet_fit(sk, X, y)
    quiet_fit(cy, X, y)
    assert cy.out_activation_ == "logistic"
    assert cy.n_outputs_ == 1
    assert cy.coefs_[-1].shape == (5, 1)
    P = cy.predict_proba(X)
    assert P.shape == (X.shape[0], 2)
    assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(cy.predict(X), cy.classes_[(P[:, 1] > 0.5).astype(int)])
    assert cy.predict(X).dtype == sk.predict(X).dtype


def test_multiclass_outputs():
    X, y = iris()
    est = quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(5,), random_state=0, max_iter=5), X, y)
    assert est.out_activation_ == "softmax"
    P = est.predict_proba(X)
    assert P.shape == (150, 3)
    assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert_array_equal(est.predict(X), est.classes_[P.argmax(axis=1)])
    assert_allclose(est.predict_log_proba(X), np.log(P), rtol=1e-12)


def test_multilabel_outputs():
    X, Y = multilabel()
    cy, sk = _both("MLPClassifier", hidden_layer_sizes=(5,), random_state=0, max_iter=5)
    quiet_fit(sk, X, Y)
    quiet_fit(cy, X, Y)
    assert cy.out_activation_ == "logistic"
    assert_array_equal(cy.classes_, sk.classes_)
    assert cy.predict(X).shape == Y.shape
    assert cy.predict(X).dtype == sk.predict(X).dtype
    P = cy.predict_proba(X)
    assert P.shape == Y.shape
    assert_array_equal(cy.predict(X), (P > 0.5).astype(int))
    assert_allclose(cy.score(X, Y), sk.score(X, Y))


def test_string_labels_round_trip():
    X, y = iris()
    names = np.array(["a", "bb", "ccc"])[y]
    est = quiet_fit(
        cymlp.MLPClassifier(
            hidden_layer_sizes=(5,), random_state=0, max_iter=30, learning_rate_init=0.05
        ),
        X,
        names,
    )
    assert_array_equal(est.classes_, ["a", "bb", "ccc"])
    pred = est.predict(X)
    assert pred.dtype == names.dtype
    assert set(pred) <= {"a", "bb", "ccc"}
    assert est.score(X, names) > 0.7


@pytest.mark.parametrize("name", NAMES)
def test_column_vector_y_warns_like_sklearn(name):
    X, y = _data(name)
    y = y.reshape(-1, 1)
    for est in _both(name, hidden_layer_sizes=(3,), random_state=0, max_iter=2):
        with pytest.warns(DataConversionWarning):
            quiet_fit(est, X, y)
        assert est.predict(X).shape == (X.shape[0],)


def test_multioutput_regression():
    X, Y = multioutput()
    cy, sk = _both("MLPRegressor", hidden_layer_sizes=(5,), random_state=0, max_iter=5)
    quiet_fit(sk, X, Y)
    quiet_fit(cy, X, Y)
    assert cy.n_outputs_ == 3
    assert cy.predict(X).shape == (X.shape[0], 3)
    assert_allclose(cy.score(X, Y), sk.score(X, Y), rtol=1e-6)


def test_single_output_regression_predict_is_1d():
    X, y = regression()
    est = quiet_fit(cymlp.MLPRegressor(hidden_layer_sizes=(5,), random_state=0, max_iter=3), X, y)
    assert est.predict(X).shape == (X.shape[0],)
    assert est.out_activation_ == "identity"
    assert cymlp.MLPRegressor(loss="poisson").loss == "poisson"


def test_poisson_predictions_are_positive():
    from _common import counts

    X, y = counts()
    est = quiet_fit(
        cymlp.MLPRegressor(loss="poisson", hidden_layer_sizes=(5,), random_state=0, max_iter=5),
        X,
        y,
    )
    assert est.out_activation_ == "exp"
    assert (est.predict(X) > 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_score_matches_sklearn(name):
    X, y = _data(name)
    cy, sk = _both(name, hidden_layer_sizes=(5,), random_state=0, max_iter=8)
    quiet_fit(sk, X, y)
    quiet_fit(cy, X, y)
    w = np.linspace(0.5, 2, X.shape[0])
    assert_allclose(cy.score(X, y), sk.score(X, y), rtol=1e-6)
    assert_allclose(cy.score(X, y, sample_weight=w), sk.score(X, y, sample_weight=w), rtol=1e-6)


# --------------------------------------------------------------------------------------
# input containers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("name", NAMES)
def test_sparse_same_as_dense(name, solver, fmt):
    X, y = _data(name)
    X = X.copy()
    X[np.abs(X) < 0.5] = 0.0  # make it actually sparse
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    params = dict(hidden_layer_sizes=(6,), solver=solver, random_state=0, max_iter=5)
    dense = quiet_fit(getattr(cymlp, name)(**params), X, y)
    sparse = quiet_fit(getattr(cymlp, name)(**params), Xs, y)
    rtol, atol = (1e-5, 1e-7) if solver == "lbfgs" else (1e-6, 1e-9)
    assert_same_params(sparse, dense, rtol=rtol, atol=atol)
    if solver != "lbfgs":
        assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-6)
    # predicting from sparse input == predicting from dense input
    if name == "MLPClassifier":
        assert_allclose(dense.predict_proba(Xs), dense.predict_proba(X), rtol=1e-9, atol=1e-12)
    else:
        assert_allclose(dense.predict(Xs), dense.predict(X), rtol=1e-9, atol=1e-12)
    # and it is scikit-learn's sparse fit
    sk = quiet_fit(getattr(sknn, name)(**params), Xs, y)
    assert_same_params(sparse, sk, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", NAMES)
def test_sparse_array_containers(name):
    X, y = _data(name)
    Xs = sp.csr_array(np.where(np.abs(X) < 0.5, 0.0, X))
    est = quiet_fit(
        getattr(cymlp, name)(hidden_layer_sizes=(4,), random_state=0, max_iter=2), Xs, y
    )
    assert est.predict(Xs).shape[0] == X.shape[0]


@pytest.mark.parametrize("name", NAMES)
def test_pandas_feature_names(name):
    pd = pytest.importorskip("pandas")
    X, y = _data(name)
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    cy, sk = _both(name, hidden_layer_sizes=(4,), random_state=0, max_iter=3)
    quiet_fit(sk, df, y)
    quiet_fit(cy, df, y)
    assert_array_equal(cy.feature_names_in_, cols)
    assert cy.feature_names_in_.dtype == sk.feature_names_in_.dtype
    assert_same_params(cy, sk)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cy.predict(df)  # same names: no warning
    with pytest.warns(UserWarning, match="feature names"):
        cy.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        cy.predict(df[cols[::-1]])
    # a plain array fit has no feature_names_in_
    plain = quiet_fit(
        getattr(cymlp, name)(hidden_layer_sizes=(4,), random_state=0, max_iter=2), X, y
    )
    assert not hasattr(plain, "feature_names_in_")


def test_pandas_series_target_and_lists():
    pd = pytest.importorskip("pandas")
    X, y = iris()
    cy, sk = _both("MLPClassifier", hidden_layer_sizes=(4,), random_state=0, max_iter=3)
    quiet_fit(sk, X.tolist(), pd.Series(y).tolist())
    quiet_fit(cy, X.tolist(), pd.Series(y))
    assert_same_params(cy, sk)


def test_non_contiguous_input():
    X, y = iris()
    Xf = np.asfortranarray(X)
    Xs = np.hstack([X, X])[:, ::2]  # strided view
    params = dict(hidden_layer_sizes=(4,), random_state=0, max_iter=3)
    ref = quiet_fit(cymlp.MLPClassifier(**params), X, y)
    for Xv in (Xf, Xs):
        est = quiet_fit(cymlp.MLPClassifier(**params), Xv, y)
        sk = quiet_fit(sknn.MLPClassifier(**params), Xv, y)
        assert_same_params(est, sk)
    assert_allclose(ref.predict_proba(Xf), ref.predict_proba(X), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_predict_dtype_with_other_input_dtype_like_sklearn(name):
    """dtype=None: a model fitted on float32 predicts float64 input in float64 (numpy
    promotion in scikit-learn's forward pass), and vice versa."""
    X, y = _data(name)
    for fit_dtype, predict_dtype in [(np.float32, np.float64), (np.float64, np.float32)]:
        cy, sk = _both(name, hidden_layer_sizes=(5,), random_state=0, max_iter=3)
        quiet_fit(sk, X.astype(fit_dtype), y)
        quiet_fit(cy, X.astype(fit_dtype), y)
        method = "predict_proba" if name == "MLPClassifier" else "predict"
        out_cy = getattr(cy, method)(X.astype(predict_dtype))
        out_sk = getattr(sk, method)(X.astype(predict_dtype))
        assert out_cy.dtype == out_sk.dtype
        assert_allclose(out_cy, out_sk, rtol=1e-4, atol=1e-6)


def test_predict_many_rows_in_chunks():
    """Prediction works in row chunks: results on a large input equal scikit-learn's."""
    X, y = iris()
    cy, sk = _both("MLPClassifier", hidden_layer_sizes=(16,), random_state=0, max_iter=3)
    quiet_fit(sk, X, y)
    quiet_fit(cy, X, y)
    rng = np.random.RandomState(0)
    big = np.repeat(X, 230, axis=0)[:33_333] + 0.01 * rng.standard_normal((33_333, 4))
    assert_same_predictions(cy, sk, big)
    P = cy.predict_proba(big)
    assert_allclose(P[:150], cy.predict_proba(big[:150]), rtol=1e-12)


# --------------------------------------------------------------------------------------
# messages and warnings
# --------------------------------------------------------------------------------------


def _iteration_lines(text):
    return [line for line in text.splitlines() if line.startswith("Iteration ")]


@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_verbose_prints_like_sklearn(name, early_stopping, capsys):
    X, y = _data(name)
    params = dict(
        hidden_layer_sizes=(4,),
        solver="sgd",
        random_state=0,
        max_iter=20,
        tol=0.5,
        n_iter_no_change=2,
        verbose=True,
        early_stopping=early_stopping,
    )
    cy, sk = _both(name, **params)
    quiet_fit(sk, X, y)
    out_sk = capsys.readouterr().out
    quiet_fit(cy, X, y)
    out_cy = capsys.readouterr().out
    lines_sk = _iteration_lines(out_sk)
    assert len(lines_sk) == sk.n_iter_ >= 1
    assert _iteration_lines(out_cy) == lines_sk
    # scikit-learn's other lines (validation scores, the stopping message) are there too
    cy_lines = out_cy.splitlines()
    for line in out_sk.splitlines():
        if not line.startswith("Iteration "):
            assert line in cy_lines, line


def test_not_verbose_prints_nothing(capsys):
    X, y = iris()
    quiet_fit(cymlp.MLPClassifier(hidden_layer_sizes=(4,), random_state=0, max_iter=3), X, y)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("name", NAMES)
def test_batch_size_larger_than_n_warns_and_clips(name):
    X, y = _data(name)
    cy, sk = _both(name, hidden_layer_sizes=(4,), random_state=0, max_iter=3, batch_size=10_000)
    for est in (sk, cy):
        with pytest.warns(UserWarning, match="batch_size"):
            quiet_fit(est, X, y)
    assert_same_fit(cy, sk)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("name", NAMES)
def test_convergence_warning_at_max_iter(name, solver):
    X, y = _data(name)
    est = getattr(cymlp, name)(hidden_layer_sizes=(4,), solver=solver, random_state=0, max_iter=2)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_no_convergence_warning_when_stopped_by_tol(name):
    X, y = _data(name)
    cy, sk = _both(
        name, hidden_layer_sizes=(4,), random_state=0, max_iter=100, tol=10.0, n_iter_no_change=1
    )
    for est in (sk, cy):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            est.fit(X, y)
    assert cy.n_iter_ == sk.n_iter_ < 100


# --------------------------------------------------------------------------------------
# partial_fit quirks
# --------------------------------------------------------------------------------------


def test_classifier_lbfgs_has_no_partial_fit():
    clf = cymlp.MLPClassifier(solver="lbfgs")
    assert not hasattr(clf, "partial_fit")
    with pytest.raises(AttributeError):
        getattr(clf, "partial_fit")  # noqa: B009 (the attribute access itself must raise)
    clf.set_params(solver="sgd")
    assert hasattr(clf, "partial_fit")
    assert hasattr(cymlp.MLPClassifier(solver="adam"), "partial_fit")


def test_regressor_lbfgs_has_partial_fit():
    X, y = regression()
    reg = cymlp.MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", random_state=0, max_iter=15)
    assert hasattr(reg, "partial_fit")
    quiet_fit(reg, X, y)
    other = cymlp.MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", random_state=0, max_iter=15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        other.partial_fit(X, y)
    # a whole lbfgs fit, not one iteration
    assert other.n_iter_ == reg.n_iter_ > 1
    assert_same_params(other, reg, rtol=1e-12, atol=0)


def test_partial_fit_one_epoch_per_call():
    X, y = iris()
    est = cymlp.MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", random_state=0)
    est.partial_fit(X, y, classes=[0, 1, 2])
    assert est.n_iter_ == 1 and est.t_ == 150 and len(est.loss_curve_) == 1
    est.partial_fit(X[:50], y[:50])
    assert est.t_ == 200 and len(est.loss_curve_) == 2


# --------------------------------------------------------------------------------------
# ecosystem
# --------------------------------------------------------------------------------------


def test_grid_search_in_pipeline_matches_sklearn():
    X, y = iris()
    grid = {"mlpclassifier__alpha": [1e-4, 1.0]}
    params = dict(hidden_layer_sizes=(5,), random_state=0, max_iter=20, learning_rate_init=0.01)
    results = []
    for Est in (cymlp.MLPClassifier, sknn.MLPClassifier):
        pipe = make_pipeline(StandardScaler(), Est(**params))
        gs = GridSearchCV(pipe, grid, cv=3)
        quiet_fit(gs, X, y)
        results.append(gs)
    assert_allclose(
        results[0].cv_results_["mean_test_score"], results[1].cv_results_["mean_test_score"]
    )
    assert results[0].best_params_ == results[1].best_params_


# --------------------------------------------------------------------------------------
# threads: results for one seed do not depend on the thread count
# --------------------------------------------------------------------------------------


def _digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_thread_count_does_not_change_training(solver, dtype):
    X, y = _digits()
    X = X.astype(dtype)
    params = dict(
        hidden_layer_sizes=(256, 128),
        solver=solver,
        random_state=0,
        max_iter=3 if solver != "lbfgs" else 5,
        batch_size=256,
    )
    fits = []
    for n_threads in (1, 2):
        with threadpool_limits(limits=n_threads):
            fits.append(quiet_fit(cymlp.MLPClassifier(**params), X, y))
    a, b = fits
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(ca, cb)
    if solver != "lbfgs":
        assert_array_equal(a.loss_curve_, b.loss_curve_)
    else:
        assert a.loss_ == b.loss_


def test_thread_count_does_not_change_sparse_training():
    X, y = _digits()
    X = sp.csr_matrix(np.where(X > 0.5, X, 0.0))
    params = dict(hidden_layer_sizes=(256,), solver="adam", random_state=0, max_iter=2)
    fits = []
    for n_threads in (1, 2):
        with threadpool_limits(limits=n_threads):
            fits.append(quiet_fit(cymlp.MLPClassifier(**params), X, y))
    for ca, cb in zip(fits[0].coefs_, fits[1].coefs_):
        assert_array_equal(ca, cb)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_does_not_change_predictions(dtype):
    X, y = _digits()
    X = X.astype(dtype)
    est = quiet_fit(
        cymlp.MLPClassifier(hidden_layer_sizes=(256, 128), random_state=0, max_iter=2), X, y
    )
    outputs = []
    for n_threads in (1, 2):
        with threadpool_limits(limits=n_threads):
            outputs.append(est.predict_proba(X))
    assert_array_equal(outputs[0], outputs[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_prediction_paths_give_the_same_bits(dtype, monkeypatch):
    # Prediction runs in chunks: from 4 chunks per thread (with 3 threads, from 2 chunks)
    # each thread takes whole chunks through every layer, with fewer the threads share
    # each layer's product; from 4 chunks per thread the weights are also packed once
    # for the kernel where it runs (a 600-deep first layer: three slices;
    # 100 and 40 wide layers: part panels; the 3-wide output is too narrow to pack). For
    # a chunk size, every way gives the same bits, and the forward pass's values. (Other
    # chunk sizes may give other last bits: a thinner block's product can go to the BLAS.)
    from cymlp import _engine

    rng = np.random.RandomState(0)
    X = rng.standard_normal((1500, 600)).astype(dtype)
    y = rng.randint(0, 3, 1500)
    est = quiet_fit(
        cymlp.MLPClassifier(hidden_layer_sizes=(100, 40), max_iter=1, random_state=0), X, y
    )
    net = est._network
    _, pk_off = net._packed_weights(net.params, 512, False)
    kernel = cymlp._blas.own_gemm()
    assert list(pk_off >= 0) == [False, kernel, kernel, False]
    h = X.astype(np.float64)
    for W, b in zip(est.coefs_[:-1], est.intercepts_[:-1]):
        h = np.maximum(h @ W + b, 0)
    z = h @ est.coefs_[-1] + est.intercepts_[-1]
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    first = {chunk: net.predict(X, chunk) for chunk in (37, 512, 1500)}  # 41 chunks, 3, 1
    for out in first.values():
        assert_allclose(out, expected, rtol=0, atol=1e-4 if dtype == np.float32 else 1e-12)
    for packed in (True, False):
        if not packed:
            monkeypatch.setattr(_engine, "packed_b_size", lambda *args: 0)
        for n_threads in (1, 2, 3):
            with threadpool_limits(limits=n_threads, user_api="openmp"):
                for chunk, out in first.items():
                    assert_array_equal(net.predict(X, chunk), out, err_msg=f"{n_threads} {chunk}")


def test_thread_count_regressor_multioutput():
    X, _ = _digits()
    rng = np.random.RandomState(0)
    Y = X[:, :5] @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((len(X), 3))
    params = dict(
        hidden_layer_sizes=(200,), solver="adam", random_state=0, max_iter=3, batch_size=100
    )
    preds = []
    for n_threads in (1, 2):
        with threadpool_limits(limits=n_threads):
            est = quiet_fit(cymlp.MLPRegressor(**params), X, Y)
            preds.append((est.coefs_[0].copy(), est.predict(X)))
    assert_array_equal(preds[0][0], preds[1][0])
    assert_array_equal(preds[0][1], preds[1][1])
