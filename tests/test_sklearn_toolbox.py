"""cymlp inside scikit-learn's toolbox: pipelines, column transformers, DataFrames,
model selection, ensembles, calibration, multi-output, inspection, metadata routing,
clone and set_params.

Each test builds the same construction twice, once around cymlp's MLP and once around
scikit-learn's, from the same random_state, and compares what comes out. In float64
cymlp reproduces scikit-learn's weights, so scores, probabilities and predictions must
agree to rounding (rtol 1e-6). The networks, data sets and epoch counts are small: the
file has to run in well under a minute on two cores.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import loguniform
from sklearn import neural_network as sknn
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import BaggingClassifier, StackingClassifier, VotingClassifier
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, make_scorer
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_val_predict,
    cross_validate,
)
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import cymlp

from _common import ATOL, RTOL, binary, iris, multioutput, regression, sample_weights

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

IMPLS = {"cymlp": cymlp, "sklearn": sknn}

# Small, fast networks; enough epochs that the fits move away from the initial weights.
CLF = dict(hidden_layer_sizes=(6,), max_iter=25, random_state=0)
REG = dict(hidden_layer_sizes=(6,), max_iter=25, random_state=0)


def _both(build):
    """build(module) for cymlp and for scikit-learn's neural_network module."""
    return build(cymlp), build(sknn)


def _raw_binary():
    """Unscaled breast cancer rows (features of very different scales): a scaler matters."""
    X, y = load_breast_cancer(return_X_y=True)
    return X[:200], y[:200]


def _frame():
    """A DataFrame with numeric and categorical columns and a target that depends on both."""
    rng = np.random.RandomState(0)
    n = 160
    df = pd.DataFrame(
        {
            "age": rng.uniform(20, 70, n),
            "income": rng.lognormal(10, 0.5, n),
            "city": rng.choice(["paris", "lyon", "nice"], n),
            "plan": rng.choice(["a", "b"], n),
        }
    )
    y = (
        0.05 * (df["age"] - 45)
        + 1e-5 * (df["income"] - df["income"].mean())
        + df["city"].map({"paris": 1.0, "lyon": -0.5, "nice": 0.0})
        + 0.7 * (df["plan"] == "b")
        + rng.normal(0, 0.1, n)
    )
    return df, y.to_numpy()


def _assert_same_outputs(cy, sk, X):
    """Predictions (and probabilities for classifiers) of two fitted estimators agree."""
    if hasattr(sk, "predict_proba"):
        assert_allclose(cy.predict_proba(X), sk.predict_proba(X), rtol=RTOL, atol=ATOL)
    pred_cy, pred_sk = cy.predict(X), sk.predict(X)
    if is_classifier(sk):
        assert_array_equal(pred_cy, pred_sk)
    else:
        assert_allclose(pred_cy, pred_sk, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------- pipelines, frames
def test_pipeline_scaler_classifier_clone_set_params():
    X, y = _raw_binary()
    pipes = _both(
        lambda m: Pipeline([("scale", StandardScaler()), ("mlp", m.MLPClassifier(**CLF))])
    )
    for p in pipes:
        p.fit(X, y)
    _assert_same_outputs(*pipes, X)
    assert pipes[0].score(X, y) == pytest.approx(pipes[1].score(X, y), rel=1e-12)
    assert isinstance(pipes[0].named_steps["mlp"], cymlp.MLPClassifier)

    # a clone is unfitted, carries the parameters, and set_params reaches the MLP
    clones = [clone(p).set_params(mlp__alpha=3.0, mlp__hidden_layer_sizes=(4,)) for p in pipes]
    with pytest.raises(NotFittedError):
        clones[0].predict(X)
    params = clones[0].get_params()
    assert params["mlp__alpha"] == 3.0 and params["mlp__hidden_layer_sizes"] == (4,)
    assert params["mlp__dtype"] is None
    for c in clones:
        c.fit(X, y)
    assert clones[0].named_steps["mlp"].coefs_[0].shape == (30, 4)
    _assert_same_outputs(*clones, X)
    # the original pipeline was not touched by the clone's set_params / fit
    assert pipes[0].named_steps["mlp"].alpha == CLF.get("alpha", 1e-4)
    assert pipes[0].named_steps["mlp"].coefs_[0].shape == (30, 6)


def test_column_transformer_dataframe_regressor():
    df, y = _frame()

    def build(m):
        pre = ColumnTransformer(
            [
                ("num", StandardScaler(), ["age", "income"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
            ]
        )
        return Pipeline([("pre", pre), ("mlp", m.MLPRegressor(**REG))])

    pipes = _both(build)
    for p in pipes:
        p.fit(df, y)
    _assert_same_outputs(*pipes, df)
    assert pipes[0].named_steps["mlp"].n_features_in_ == 2 + 3 + 2
    # the one-hot output is sparse or dense depending on density; cymlp takes either
    pre_out = pipes[0].named_steps["pre"].transform(df)
    dense = pre_out.toarray() if hasattr(pre_out, "toarray") else pre_out
    assert_allclose(
        pipes[0].named_steps["mlp"].predict(dense), pipes[1].predict(df), rtol=RTOL, atol=ATOL
    )
    # set_params through the ColumnTransformer and the MLP, on clones
    clones = [
        clone(p).set_params(pre__cat__drop="first", mlp__learning_rate_init=0.01) for p in pipes
    ]
    for c in clones:
        c.fit(df, y)
    assert clones[0].named_steps["mlp"].n_features_in_ == 2 + 2 + 1
    _assert_same_outputs(*clones, df)


def _messages(record):
    return [str(w.message) for w in record]


def test_feature_names_in_and_mismatch_behaviour():
    """feature_names_in_ from a DataFrame, and scikit-learn's checks when predicting on
    differently named columns (error) or on an array (warning), as scikit-learn's MLP."""
    X, y = iris()
    df = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    models = _both(lambda m: m.MLPClassifier(**CLF).fit(df, y))
    assert_array_equal(models[0].feature_names_in_, models[1].feature_names_in_)
    assert models[0].feature_names_in_.dtype == object
    assert models[0].n_features_in_ == 4

    # different column names: scikit-learn raises a ValueError naming the columns
    renamed = df.rename(columns={"pl": "petal_length"})
    errors = []
    for m in models:
        with pytest.raises(ValueError, match="feature names should match") as exc:
            m.predict(renamed)
        errors.append(str(exc.value))
    assert errors[0] == errors[1]

    # same names, other order: also an error in both
    for m in models:
        with pytest.raises(ValueError, match="feature names"):
            m.predict(df[["sw", "sl", "pl", "pw"]])

    # a plain array after a DataFrame fit: the UserWarning, same text modulo the class path
    records = []
    for m in models:
        with pytest.warns(UserWarning, match="does not have valid feature names") as rec:
            m.predict(X)
        records.append(_messages(rec))
    assert records[0] == records[1]

    # fitted on an array, predicting on a DataFrame: the other warning, no feature_names_in_
    arr_models = _both(lambda m: m.MLPClassifier(**CLF).fit(X, y))
    assert not hasattr(arr_models[0], "feature_names_in_")
    records = []
    for m in arr_models:
        with pytest.warns(UserWarning, match="has feature names, but") as rec:
            m.predict(df)
        records.append(_messages(rec))
    assert records[0] == records[1]

    # matching names: no warning, same predictions
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _assert_same_outputs(*models, df)


def test_set_output_pandas_pipeline():
    X, y = _raw_binary()
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    pipes = _both(
        lambda m: make_pipeline(StandardScaler(), m.MLPClassifier(**CLF)).set_output(
            transform="pandas"
        )
    )
    for p in pipes:
        p.fit(df, y)
    # the scaler handed the MLP a DataFrame: the MLP recorded its column names
    mlp = pipes[0][-1]
    assert_array_equal(mlp.feature_names_in_, np.array(cols, dtype=object))
    assert isinstance(pipes[0][:-1].transform(df), pd.DataFrame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warning inside the pipeline
        _assert_same_outputs(*pipes, df)
    # clone keeps the output configuration
    c = clone(pipes[0]).set_params(mlpclassifier__max_iter=5).fit(df, y)
    assert_array_equal(c[-1].feature_names_in_, np.array(cols, dtype=object))


# ----------------------------------------------------------------------- model selection
def _assert_same_search(cy, sk):
    assert cy.best_params_ == sk.best_params_
    assert_allclose(
        cy.cv_results_["mean_test_score"], sk.cv_results_["mean_test_score"], rtol=RTOL, atol=ATOL
    )
    assert_allclose(
        cy.cv_results_["std_test_score"], sk.cv_results_["std_test_score"], rtol=1e-5, atol=1e-9
    )
    assert_array_equal(cy.cv_results_["rank_test_score"], sk.cv_results_["rank_test_score"])
    assert cy.best_score_ == pytest.approx(sk.best_score_, rel=RTOL)
    best = cy.best_estimator_
    best = best[-1] if isinstance(best, Pipeline) else best
    assert type(best).__module__.startswith("cymlp")


def test_grid_search_n_jobs():
    X, y = iris()
    grid = {"alpha": [1e-4, 1.0], "hidden_layer_sizes": [(3,), (8,)]}
    searches = _both(
        lambda m: GridSearchCV(
            m.MLPClassifier(max_iter=20, random_state=0),
            grid,
            cv=KFold(3, shuffle=True, random_state=0),
            n_jobs=2,
        )
    )
    for s in searches:
        s.fit(X, y)
    _assert_same_search(*searches)
    # the scores differ across the grid, or the comparison above says little
    assert np.ptp(searches[1].cv_results_["mean_test_score"]) > 0
    _assert_same_outputs(searches[0].best_estimator_, searches[1].best_estimator_, X)


def test_grid_of_numpy_strings():
    # a grid written as numpy arrays hands the estimator numpy.str_ values, which the
    # compiled network once refused ("Expected str, got numpy.str_")
    X, y = iris()
    grid = {"activation": np.array(["relu", "tanh"]), "solver": np.array(["adam", "sgd"])}
    searches = _both(
        lambda m: GridSearchCV(m.MLPClassifier(max_iter=10, random_state=0), grid, cv=2)
    )
    for s in searches:
        s.fit(X, y)
    _assert_same_search(*searches)
    X, y = regression()
    for loss in ("huber", "absolute_error"):
        ref = cymlp.MLPRegressor(loss=loss, **REG).fit(X, y)
        got = cymlp.MLPRegressor(loss=np.str_(loss), **REG).fit(X, y)
        assert_array_equal(got.predict(X), ref.predict(X))


def test_randomized_search_n_jobs_pipeline():
    X, y = regression()
    dist = {
        "mlp__alpha": loguniform(1e-5, 1e1),
        "mlp__learning_rate_init": loguniform(1e-3, 3e-2),
        "mlp__activation": ["relu", "tanh"],
    }
    searches = _both(
        lambda m: RandomizedSearchCV(
            Pipeline([("scale", StandardScaler()), ("mlp", m.MLPRegressor(**REG))]),
            dist,
            n_iter=4,
            cv=3,
            random_state=0,
            n_jobs=2,
        )
    )
    for s in searches:
        s.fit(X, y)
    assert searches[0].cv_results_["params"] == searches[1].cv_results_["params"]
    _assert_same_search(*searches)
    _assert_same_outputs(searches[0].best_estimator_, searches[1].best_estimator_, X)


def test_cross_validate_and_cross_val_predict():
    X, y = binary()
    results = [
        cross_validate(
            m.MLPClassifier(**CLF),
            X,
            y,
            cv=4,
            scoring=["accuracy", "neg_log_loss", "roc_auc"],
            return_estimator=True,
            return_train_score=True,
        )
        for m in (cymlp, sknn)
    ]
    for key in ("test_accuracy", "test_neg_log_loss", "test_roc_auc", "train_neg_log_loss"):
        assert_allclose(results[0][key], results[1][key], rtol=RTOL, atol=ATOL, err_msg=key)
    assert all(isinstance(e, cymlp.MLPClassifier) for e in results[0]["estimator"])
    # each fold's estimator is a separate fitted clone
    assert len({id(e) for e in results[0]["estimator"]}) == 4
    probas = [
        cross_val_predict(m.MLPClassifier(**CLF), X, y, cv=4, method="predict_proba")
        for m in (cymlp, sknn)
    ]
    assert_allclose(probas[0], probas[1], rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------- ensembles and meta
def _voting(m):
    return VotingClassifier(
        [("a", m.MLPClassifier(**CLF)), ("b", m.MLPClassifier(**{**CLF, "random_state": 1}))],
        voting="soft",
    )


def _bagging(m):
    return BaggingClassifier(m.MLPClassifier(**CLF), n_estimators=3, random_state=0)


def _stacking(m):
    return StackingClassifier(
        [("a", m.MLPClassifier(**CLF)), ("b", m.MLPClassifier(**{**CLF, "activation": "tanh"}))],
        final_estimator=LogisticRegression(),
        cv=3,
    )


def _calibrated(m):
    return CalibratedClassifierCV(m.MLPClassifier(**CLF), cv=3, method="sigmoid")


@pytest.mark.parametrize(
    "build, params",
    [
        (_voting, {"a__alpha": 0.5, "b__hidden_layer_sizes": (4,), "weights": [2, 1]}),
        (_bagging, {"estimator__alpha": 0.5, "max_samples": 0.8}),
        (_stacking, {"a__alpha": 0.5, "b__max_iter": 10, "final_estimator__C": 0.5}),
        (_calibrated, {"estimator__alpha": 0.5, "method": "isotonic"}),
    ],
    ids=["voting_soft", "bagging", "stacking", "calibrated"],
)
def test_classifier_ensembles(build, params):
    X, y = iris() if build is not _calibrated else binary()
    models = _both(build)
    for m in models:
        m.fit(X, y)
    _assert_same_outputs(*models, X)
    assert models[0].score(X, y) == pytest.approx(models[1].score(X, y), rel=1e-12)

    # clone + set_params reach the inner MLPs; the clones fit the same way
    clones = [clone(m).set_params(**params) for m in models]
    got = clones[0].get_params()
    for key, value in params.items():
        assert got[key] == value, key
    for c in clones:
        c.fit(X, y)
    _assert_same_outputs(*clones, X)
    # and they really differ from the original fits (the parameters did something)
    assert not np.allclose(clones[1].predict_proba(X), models[1].predict_proba(X))


def test_multioutput_regressor():
    X, Y = multioutput()
    models = _both(lambda m: MultiOutputRegressor(m.MLPRegressor(**REG)))
    for m in models:
        m.fit(X, Y)
    assert len(models[0].estimators_) == Y.shape[1]
    assert all(isinstance(e, cymlp.MLPRegressor) for e in models[0].estimators_)
    _assert_same_outputs(*models, X)
    clones = [clone(m).set_params(estimator__alpha=2.0, n_jobs=2) for m in models]
    for c in clones:
        c.fit(X, Y)
    assert all(e.alpha == 2.0 for e in clones[0].estimators_)
    _assert_same_outputs(*clones, X)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_permutation_importance(task):
    if task == "classifier":
        X, y = iris()
        models = _both(lambda m: m.MLPClassifier(**CLF).fit(X, y))
    else:
        X, y = regression()
        models = _both(lambda m: m.MLPRegressor(**REG).fit(X, y))
    results = [permutation_importance(m, X, y, n_repeats=3, random_state=0) for m in models]
    for key in ("importances_mean", "importances_std", "importances"):
        assert_allclose(results[0][key], results[1][key], rtol=1e-5, atol=1e-9, err_msg=key)
    assert np.ptp(results[1]["importances_mean"]) > 0


# -------------------------------------------------------------------- metadata routing
@pytest.fixture
def routing():
    sklearn.set_config(enable_metadata_routing=True)
    try:
        yield
    finally:
        sklearn.set_config(enable_metadata_routing=False)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_routing_sample_weight_pipeline(routing, kind):
    if kind == "classifier":
        X, y = binary()
        make = lambda m: m.MLPClassifier(**CLF)  # noqa: E731
    else:
        X, y = regression()
        make = lambda m: m.MLPRegressor(**REG)  # noqa: E731
    w = sample_weights(len(y))

    def build(m):
        return Pipeline(
            [
                ("scale", StandardScaler().set_fit_request(sample_weight=False)),
                ("mlp", make(m).set_fit_request(sample_weight=True)),
            ]
        )

    pipes = _both(build)
    for p in pipes:
        p.fit(X, y, sample_weight=w)
    _assert_same_outputs(*pipes, X)

    # the weights really reached the MLP: the same as fitting the scaled data with them ...
    direct = make(sknn).fit(StandardScaler().fit_transform(X), y, sample_weight=w)
    _assert_same_outputs(pipes[0][-1], direct, pipes[0][0].transform(X))
    # ... and not the same as fitting without them
    unweighted = make(cymlp).fit(pipes[0][0].transform(X), y)
    assert not np.allclose(unweighted.coefs_[0], pipes[0][-1].coefs_[0])

    # clone keeps the fit request
    c = clone(pipes[0]).set_params(mlp__alpha=0.1)
    assert c[-1].get_metadata_routing().fit.requests["sample_weight"] is True
    c.fit(X, y, sample_weight=w)
    ref = clone(pipes[1]).set_params(mlp__alpha=0.1).fit(X, y, sample_weight=w)
    _assert_same_outputs(c, ref, X)


def test_routing_sample_weight_cross_validate(routing):
    X, y = iris()
    w = sample_weights(len(y), seed=1)
    # the weights go to the scorer too (a scorer must say whether it takes them)
    weighted_log_loss = make_scorer(
        log_loss, greater_is_better=False, response_method="predict_proba"
    ).set_score_request(sample_weight=True)
    results = []
    for m in (cymlp, sknn):
        est = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=True),
            m.MLPClassifier(**CLF).set_fit_request(sample_weight=True),
        )
        results.append(
            cross_validate(
                est,
                X,
                y,
                cv=KFold(3, shuffle=True, random_state=0),
                scoring=weighted_log_loss,
                params={"sample_weight": w},
                return_estimator=True,
            )
        )
    assert_allclose(results[0]["test_score"], results[1]["test_score"], rtol=RTOL, atol=ATOL)
    for a, b in zip(results[0]["estimator"], results[1]["estimator"]):
        assert_allclose(a[-1].coefs_[0], b[-1].coefs_[0], rtol=RTOL, atol=ATOL)
    # the weights mattered: an unweighted cross-validation scores differently
    plain = cross_validate(
        cymlp.MLPClassifier(**CLF),
        StandardScaler().fit_transform(X),
        y,
        cv=KFold(3, shuffle=True, random_state=0),
        scoring="neg_log_loss",
    )
    assert not np.allclose(plain["test_score"], results[0]["test_score"])


def test_routing_unrequested_sample_weight_raises_like_sklearn(routing):
    """Without set_fit_request, routing sample_weight is an error, as for scikit-learn's
    MLP (both estimators declare sample_weight in fit, so both are consumers)."""
    X, y = iris()
    w = sample_weights(len(y))
    errors = []
    for m in (cymlp, sknn):
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=False), m.MLPClassifier(**CLF)
        )
        with pytest.raises(Exception) as exc:
            pipe.fit(X, y, sample_weight=w)
        errors.append(exc)
    assert errors[0].type is errors[1].type
    norm = [re.sub(r"cymlp|sklearn", "", str(e.value)) for e in errors]
    assert "sample_weight" in norm[0]
    assert norm[0] == norm[1]


def test_routing_set_fit_request_api(routing):
    """The request API of cymlp's MLPs mirrors scikit-learn's: fit, partial_fit, score."""
    for name in ("MLPClassifier", "MLPRegressor"):
        cy, sk = getattr(cymlp, name)(), getattr(sknn, name)()
        for method in ("fit", "partial_fit", "score"):
            setter = f"set_{method}_request"
            assert hasattr(cy, setter) == hasattr(sk, setter), (name, setter)
        r_cy = cy.get_metadata_routing()
        r_sk = sk.get_metadata_routing()
        # plus the validation data of fit and partial_fit (X_val, y_val, sample_weight_val)
        validation = {"X_val": None, "y_val": None, "sample_weight_val": None}
        for method in ("fit", "partial_fit", "score"):
            expected = dict(getattr(r_sk, method).requests)
            if method != "score":
                expected.update(validation)
            assert getattr(r_cy, method).requests == expected, method
        assert cy.set_fit_request(sample_weight="w") is cy
        assert cy.get_metadata_routing().fit.requests["sample_weight"] == "w"


@pytest.mark.parametrize("early_stopping", [False, True])
def test_validation_data_through_pipeline_transform_input(routing, early_stopping):
    """Pipeline(transform_input=["X_val"]) sends X_val through the fitted steps before
    the MLP sees it: the recorded validation scores are those of the scaled data."""
    X, y = binary()
    X = X * 100 + 50  # unscaled: the scaler matters
    X_train, X_val, y_train, y_val = X[:150], X[150:], y[:150], y[150:]
    clf = cymlp.MLPClassifier(
        (8,), max_iter=15, random_state=0, early_stopping=early_stopping
    ).set_fit_request(X_val=True, y_val=True)
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", clf)], transform_input=["X_val"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(X_train, y_train, X_val=X_val, y_val=y_val)
    mlp, scaler = pipe.named_steps["mlp"], pipe.named_steps["scale"]
    assert len(mlp.history_["val_score"]) == mlp.n_iter_
    if not early_stopping:  # the last epoch's weights are the final ones
        expected = mlp.score(scaler.transform(X_val), y_val)
        assert mlp.history_["val_score"][-1] == expected
        # had X_val reached the MLP untransformed, the score would differ
        assert mlp.score(X_val, y_val) != expected
    else:  # the best epoch's weights are restored
        assert max(mlp.history_["val_score"]) == mlp.score(scaler.transform(X_val), y_val)


# ----------------------------------------------------------------------- clone, params
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_clone_and_set_params_standalone(name):
    cls = getattr(cymlp, name)
    sk_params = getattr(sknn, name)().get_params()
    est = cls(dtype=np.float32, alpha=0.3, hidden_layer_sizes=(7, 3))
    params = est.get_params()
    # the same parameters as scikit-learn's MLP, plus dtype and the Keras-style controls
    own = {"dtype", "init", "dropout", "batch_normalization", "weight_decay", "rho", "callbacks"}
    own |= {"class_weight"} if name == "MLPClassifier" else {"huber_delta"}
    assert set(params) == set(sk_params) | own
    c = clone(est)
    assert c is not est and c.get_params() == params
    assert c.set_params(alpha=0.5, dtype=np.float64) is c
    assert c.alpha == 0.5 and c.dtype == np.float64 and est.alpha == 0.3
    with pytest.raises(ValueError, match="Invalid parameter"):
        c.set_params(not_a_param=1)
    assert is_classifier(est) == (name == "MLPClassifier")
    assert is_regressor(est) == (name == "MLPRegressor")
    # a clone of a fitted estimator is unfitted
    X, y = iris()
    fitted = cls(**CLF).fit(X, y)
    with pytest.raises(NotFittedError):
        clone(fitted).predict(X)
