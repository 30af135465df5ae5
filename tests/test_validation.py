"""Bad input and bad parameters give clear errors, as in scikit-learn."""

import warnings

import numpy as np
import pytest
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import cymlp

from _common import counts, iris, quiet_fit, regression

NAMES = ["MLPClassifier", "MLPRegressor"]


def _data(name):
    return iris() if name == "MLPClassifier" else regression()


def _small(name, **params):
    return getattr(cymlp, name)(
        **{"hidden_layer_sizes": (3,), "random_state": 0, "max_iter": 2, **params}
    )


# --------------------------------------------------------------------------------------
# input data
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_X_at_fit(name, bad):
    X, y = _data(name)
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="(?i)(nan|inf)"):
        _small(name).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_X_at_predict(name, bad):
    X, y = _data(name)
    est = quiet_fit(_small(name), X, y)
    Xb = X[:5].copy()
    Xb[2, 0] = bad
    with pytest.raises(ValueError, match="(?i)(nan|inf)"):
        est.predict(Xb)
    if name == "MLPClassifier":
        with pytest.raises(ValueError, match="(?i)(nan|inf)"):
            est.predict_proba(Xb)


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_X_at_partial_fit(name):
    X, y = _data(name)
    X = X.copy()
    X[0, 0] = np.nan
    est = _small(name, solver="sgd")
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    with pytest.raises(ValueError, match="(?i)nan"):
        est.partial_fit(X, y, **kw)


def test_non_finite_y_regression():
    X, y = regression()
    y = y.copy()
    y[4] = np.nan
    with pytest.raises(ValueError, match="(?i)nan"):
        _small("MLPRegressor").fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_number_of_features_at_predict(name):
    X, y = _data(name)
    est = quiet_fit(_small(name), X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :-1])
    with pytest.raises(ValueError, match="features"):
        est.predict(np.hstack([X, X]))
    with pytest.raises(ValueError, match="features"):
        est.score(X[:, :-1], y)
    if name == "MLPClassifier":
        with pytest.raises(ValueError, match="features"):
            est.predict_proba(X[:, :-1])
        with pytest.raises(ValueError, match="features"):
            est.predict_log_proba(X[:, :-1])


@pytest.mark.parametrize("name", NAMES)
def test_wrong_number_of_features_at_partial_fit(name):
    X, y = _data(name)
    est = _small(name, solver="adam")
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    est.partial_fit(X, y, **kw)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :-1], y)


@pytest.mark.parametrize("name", NAMES)
def test_warm_start_with_other_number_of_features(name):
    X, y = _data(name)
    est = quiet_fit(_small(name, warm_start=True), X, y)
    with pytest.raises(ValueError, match="features"):
        est.fit(X[:, :-1], y)


@pytest.mark.parametrize("name", NAMES)
def test_empty_X(name):
    X, y = _data(name)
    with pytest.raises(ValueError):
        _small(name).fit(X[:0], y[:0])
    with pytest.raises(ValueError):
        _small(name).fit(np.empty((len(y), 0)), y)
    est = quiet_fit(_small(name), X, y)
    with pytest.raises(ValueError):
        est.predict(X[:0, :0])


@pytest.mark.parametrize("name", NAMES)
def test_malformed_X_and_y(name):
    X, y = _data(name)
    with pytest.raises(ValueError):
        _small(name).fit(X[:, 0], y)  # 1-D X
    with pytest.raises(ValueError):
        _small(name).fit(X[:, :, None], y)  # 3-D X
    with pytest.raises(ValueError):
        _small(name).fit(X, y[:-1])  # lengths differ
    with pytest.raises(ValueError):
        _small(name).fit(np.full(X.shape, "a", dtype=object), y)  # not numbers


def test_continuous_target_for_classifier():
    X, y = regression()
    with pytest.raises(ValueError):
        sknn.MLPClassifier(max_iter=1).fit(X, y)  # the reference raises
    with pytest.raises(ValueError):
        _small("MLPClassifier").fit(X, y)


@pytest.mark.parametrize("name", NAMES)
def test_sample_weight_wrong_length(name):
    X, y = _data(name)
    with pytest.raises(ValueError):
        _small(name).fit(X, y, sample_weight=np.ones(len(y) - 1))


@pytest.mark.parametrize("name", NAMES)
def test_not_fitted(name):
    X, _ = _data(name)
    est = _small(name)
    with pytest.raises(NotFittedError):
        est.predict(X)
    if name == "MLPClassifier":
        with pytest.raises(NotFittedError):
            est.predict_proba(X)


# --------------------------------------------------------------------------------------
# poisson
# --------------------------------------------------------------------------------------


def test_poisson_negative_targets():
    X, y = counts()
    y = y.copy()
    y[7] = -1.0
    with pytest.raises(ValueError, match="(?i)(negative|>= ?0)"):
        _small("MLPRegressor", loss="poisson").fit(X, y)
    with pytest.raises(ValueError, match="(?i)(negative|>= ?0)"):
        _small("MLPRegressor", loss="poisson", solver="sgd").partial_fit(X, y)


def test_poisson_zero_targets_are_fine():
    X, y = counts()
    est = quiet_fit(_small("MLPRegressor", loss="poisson"), X, np.zeros_like(y))
    assert np.isfinite(est.loss_)
    # negative targets are fine with squared error
    quiet_fit(_small("MLPRegressor"), X, y - 10.0)


# --------------------------------------------------------------------------------------
# divergence
# --------------------------------------------------------------------------------------


def test_diverging_fit_raises_like_sklearn():
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(10)
    # a fixed seed: with some initial weights (about 1 in 20) both libraries' fits stay
    # finite on these data
    for Est in (sknn.MLPRegressor, cymlp.MLPRegressor):
        with pytest.raises(ValueError, match="non-finite"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Est(hidden_layer_sizes=(5,), max_iter=5, random_state=0).fit(X, y)


@pytest.mark.parametrize(
    "solver,scale,lr", [("sgd", 1e3, 10.0), ("sgd", 1e150, 1e6), ("adam", 1e200, 1e100)]
)
def test_huge_learning_rate_on_huge_values_raises(solver, scale, lr):
    X, y = regression()
    X = X * scale
    y = y * scale
    params = dict(
        hidden_layer_sizes=(5,), solver=solver, learning_rate_init=lr, random_state=0, max_iter=5
    )
    for Est in (sknn.MLPRegressor, cymlp.MLPRegressor):
        with pytest.raises(ValueError, match="non-finite"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Est(**params).fit(X, y)


def test_diverging_classifier_raises():
    X, y = iris()
    params = dict(
        hidden_layer_sizes=(5,),
        solver="sgd",
        learning_rate_init=1e30,
        momentum=0.0,
        random_state=0,
        max_iter=5,
    )
    for Est in (sknn.MLPClassifier, cymlp.MLPClassifier):
        with pytest.raises(ValueError, match="non-finite"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Est(**params).fit(X * 1e200, y)


def test_diverging_with_early_stopping_keeps_best_weights():
    """scikit-learn does not raise here: the best (finite) weights are restored and
    the last validation score is a float NaN."""
    X, y = iris()
    params = dict(
        hidden_layer_sizes=100,
        activation="identity",
        solver="sgd",
        learning_rate_init=1,
        max_iter=20,
        early_stopping=True,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = sknn.MLPRegressor(**params).fit(X, y)
        cy = cymlp.MLPRegressor(**params).fit(X, y)
    assert np.isnan(sk.validation_scores_[-1])  # precondition
    assert isinstance(cy.validation_scores_[-1], float)
    assert np.isnan(cy.validation_scores_[-1])
    assert all(np.isfinite(c).all() for c in cy.coefs_ + cy.intercepts_)
    assert cy.n_iter_ == sk.n_iter_


# --------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------

BAD_PARAMS = [
    dict(hidden_layer_sizes=(0,)),
    dict(hidden_layer_sizes=(-1,)),
    dict(hidden_layer_sizes=(5, 0)),
    dict(hidden_layer_sizes=0),
    dict(hidden_layer_sizes=-3),
    dict(activation="swish"),
    dict(solver="newton"),
    dict(learning_rate="cosine"),
    dict(alpha=-1.0),
    dict(batch_size=0),
    dict(batch_size="big"),
    dict(learning_rate_init=0.0),
    dict(power_t=-0.5),
    dict(max_iter=0),
    dict(tol=-1e-3),
    dict(momentum=1.5),
    dict(validation_fraction=1.0),
    dict(beta_1=1.0),
    dict(beta_2=-0.1),
    dict(epsilon=0.0),
    dict(n_iter_no_change=0),
    dict(max_fun=0),
    dict(shuffle="yes"),
]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=lambda p: repr(p))
@pytest.mark.parametrize("name", NAMES)
def test_bad_parameters(name, params):
    X, y = _data(name)
    with pytest.raises(ValueError):  # the reference rejects them too
        getattr(sknn, name)(**params).fit(X, y)
    with pytest.raises(ValueError):
        getattr(cymlp, name)(**params).fit(X, y)


# cymlp's own parameters (the reference has none of them)
BAD_OWN_PARAMS = [
    dict(init="zeros"),
    dict(dropout=1.0),
    dict(dropout=-0.1),
    dict(dropout="half"),
    dict(batch_normalization="yes"),
    dict(weight_decay=-1.0),
    dict(rho=1.0),
    dict(callbacks="EarlyStopping"),
]


@pytest.mark.parametrize("params", BAD_OWN_PARAMS, ids=lambda p: repr(p))
@pytest.mark.parametrize("name", NAMES)
def test_bad_own_parameters(name, params):
    X, y = _data(name)
    with pytest.raises(ValueError):
        getattr(cymlp, name)(**params).fit(X, y)


def test_bad_regression_loss():
    X, y = regression()
    with pytest.raises(ValueError):
        cymlp.MLPRegressor(loss="hinge").fit(X, y)
    with pytest.raises(ValueError):
        cymlp.MLPRegressor(loss="log_loss").fit(X, y)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.complex128, "bogus"], ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_bad_dtype(name, dtype):
    X, y = _data(name)
    with pytest.raises((ValueError, TypeError)):
        _small(name, dtype=dtype).fit(X, y)


@pytest.mark.parametrize("dtype", [None, np.float32, np.float64])
def test_good_dtypes(dtype):
    X, y = iris()
    est = quiet_fit(_small("MLPClassifier", dtype=dtype), X, y)
    expected = np.float64 if dtype is None else dtype
    assert est.coefs_[0].dtype == expected


# --------------------------------------------------------------------------------------
# partial_fit / warm_start / early_stopping
# --------------------------------------------------------------------------------------


def test_partial_fit_classifier_needs_classes_first():
    X, y = iris()
    est = _small("MLPClassifier", solver="sgd")
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y)


def test_partial_fit_classes_must_cover_y():
    X = [[3.0, 2.0], [1.0, 6.0]]
    y = [1, 0]
    with pytest.raises(ValueError):
        _small("MLPClassifier", solver="sgd").partial_fit(X, y, classes=[2])


def test_partial_fit_unseen_class_later():
    X, y = iris()
    est = _small("MLPClassifier", solver="adam")
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y)


def test_partial_fit_different_classes_second_time():
    X, y = iris()
    est = _small("MLPClassifier", solver="adam")
    est.partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError):
        est.partial_fit(X, y, classes=[0, 1, 2, 3])


def test_warm_start_with_other_classes():
    X, y = iris()
    est = quiet_fit(_small("MLPClassifier", warm_start=True), X, y)
    with pytest.raises(ValueError, match="warm_start"):
        est.fit(X[y < 2], y[y < 2])


@pytest.mark.parametrize("name", NAMES)
def test_partial_fit_with_early_stopping(name):
    X, y = _data(name)
    est = _small(name, solver="sgd", early_stopping=True)
    kw = {"classes": np.unique(y)} if name == "MLPClassifier" else {}
    with pytest.raises(ValueError, match="early_stopping"):
        est.partial_fit(X, y, **kw)


@pytest.mark.parametrize("name", NAMES)
def test_validation_set_too_small(name):
    X, y = _data(name)
    idx = [0, 1, 60, 61, 120, 121] if name == "MLPClassifier" else [0, 1, 2]
    est = _small(name, early_stopping=True, validation_fraction=0.1)
    with pytest.raises(ValueError, match="validation set is too small"):
        est.fit(X[idx], y[idx])


def test_failed_fit_leaves_estimator_usable():
    X, y = iris()
    est = quiet_fit(_small("MLPClassifier"), X, y)
    Xb = X.copy()
    Xb[0, 0] = np.nan
    with pytest.raises(ValueError):
        est.fit(Xb, y)
    quiet_fit(est, X, y)
    assert est.predict(X).shape == (150,)
