"""The Keras-style layer options on the estimators: activations, dropout, batch
normalization and the robust regression losses, fitted end to end."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.metrics import mean_absolute_error

import cymlp


def _digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


@pytest.mark.parametrize("activation", ["sigmoid", "leaky_relu", "elu", "gelu", "silu", "softplus"])
def test_new_activations_learn(activation):
    X, y = _digits()
    clf = cymlp.MLPClassifier(
        (32,), activation=activation, learning_rate_init=0.01, max_iter=60, random_state=0
    )
    clf.fit(X, y)
    assert clf.score(X, y) > 0.9


def test_sigmoid_is_logistic():
    X, y = _digits()
    kw = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
    a = cymlp.MLPClassifier(activation="sigmoid", **kw).fit(X, y)
    b = cymlp.MLPClassifier(activation="logistic", **kw).fit(X, y)
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)


def test_batch_normalization_fit_predict_and_attributes():
    X, y = _digits()
    X = X * 50 + 3  # badly scaled input: batch normalization copes
    # (batch 32: enough steps for the running statistics, momentum 0.99, to settle)
    clf = cymlp.MLPClassifier(
        (32, 16), batch_normalization=True, batch_size=32, max_iter=40, random_state=0
    )
    clf.fit(X, y)
    assert clf.score(X, y) > 0.9
    assert [g.shape for g in clf.bn_gamma_] == [(32,), (16,)]
    assert [m.shape for m in clf.bn_moving_variance_] == [(32,), (16,)]
    assert all(not b.any() for b in clf.intercepts_[:-1])  # unused under batch norm
    assert not np.allclose(clf.bn_gamma_[0], 1)  # trained
    assert not np.allclose(clf.bn_moving_mean_[0], 0)  # running statistics updated
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    # prediction rows are independent of each other (running statistics, not batch ones)
    np.testing.assert_allclose(clf.predict_proba(X[:5]), clf.predict_proba(X)[:5], rtol=1e-12)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
    assert copy.bn_gamma_[0].base is not None  # still views of the buffer
    # alpha does not touch the scales and shifts: they have no L2 term
    assert not hasattr(clone(clf), "bn_gamma_")


def test_batch_normalization_ignores_alpha_on_its_parameters():
    X, y = _digits()
    kw = dict(
        hidden_layer_sizes=(8,),
        batch_normalization=True,
        max_iter=1,
        random_state=0,
        solver="sgd",
        momentum=0.0,
        batch_size=len(X),
        shuffle=False,
    )
    lo = cymlp.MLPClassifier(alpha=0.0, **kw).fit(X, y)
    hi = cymlp.MLPClassifier(alpha=10.0, **kw).fit(X, y)
    np.testing.assert_array_equal(lo.bn_gamma_[0], hi.bn_gamma_[0])
    np.testing.assert_array_equal(lo.bn_beta_[0], hi.bn_beta_[0])
    assert not np.array_equal(lo.coefs_[0], hi.coefs_[0])


def test_dropout_per_layer_and_validation():
    X, y = _digits()
    clf = cymlp.MLPClassifier((16, 8), dropout=[0.2, 0.0], max_iter=3, random_state=0)
    clf.fit(X, y)
    assert clf._network.dropout == [0.2, 0.0]
    with pytest.raises(ValueError, match="one per hidden layer"):
        cymlp.MLPClassifier((16, 8), dropout=[0.1, 0.2, 0.3]).fit(X, y)
    with pytest.raises(ValueError, match="needs hidden layers"):
        cymlp.MLPClassifier((), dropout=0.5).fit(X, y)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        cymlp.MLPClassifier((16, 8), dropout=[0.1, 1.0]).fit(X, y)


@pytest.mark.parametrize("loss", ["absolute_error", "huber"])
def test_robust_losses_beat_squared_error_with_outliers(loss):
    X, y = make_regression(n_samples=400, n_features=5, noise=0.5, random_state=0)
    y = y / y.std()
    rng = np.random.RandomState(0)
    train, test = np.arange(300), np.arange(300, 400)
    y_dirty = y.copy()
    bad = rng.choice(train, 30, replace=False)
    y_dirty[bad] += rng.choice([-1, 1], 30) * 30  # 10 % gross outliers
    kw = dict(hidden_layer_sizes=(32,), max_iter=300, learning_rate_init=0.01, random_state=0)
    errors = {}
    for name in ("squared_error", loss):
        reg = cymlp.MLPRegressor(loss=name, **kw).fit(X[train], y_dirty[train])
        errors[name] = mean_absolute_error(y[test], reg.predict(X[test]))
    assert errors[loss] < 0.5 * errors["squared_error"], errors


def test_huber_delta_matters():
    X, y = make_regression(n_samples=100, n_features=3, noise=5, random_state=0)
    kw = dict(loss="huber", hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a = cymlp.MLPRegressor(huber_delta=0.1, **kw).fit(X, y)
    b = cymlp.MLPRegressor(huber_delta=10.0, **kw).fit(X, y)
    assert not np.allclose(a.coefs_[0], b.coefs_[0])
