"""`init`: Keras's weight initialisers (zero biases), and scikit-learn's draws for None.

The moments are checked on a wide layer (hundreds of thousands of weights), where the
empirical standard deviation is within a fraction of a percent of the formula.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import stats
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning

import cymlp
from cymlp import _init

FAN_IN, FAN_OUT = 400, 600


def _init_only(init, hidden=(FAN_OUT,), n_features=FAN_IN, seed=0, cls=cymlp.MLPRegressor, **kw):
    """An estimator holding only its initial weights: the set-up `fit` runs on a first
    pass (`_initialize`), without training."""
    est = cls(hidden_layer_sizes=hidden, init=init, random_state=seed, **kw)
    rng = np.random.RandomState(1)
    X = rng.standard_normal((20, n_features))
    y = rng.standard_normal(20)
    est._random_state = np.random.RandomState(seed)
    layer_units = [n_features, *hidden, 1]
    est._initialize(y.reshape(-1, 1), layer_units, np.dtype(np.float64))
    return est, X, y


# (init, "uniform" bound or "normal" std as a function of the fans)
EXPECTED = {
    "glorot_uniform": ("uniform", lambda i, o: np.sqrt(6 / (i + o))),
    "he_uniform": ("uniform", lambda i, o: np.sqrt(6 / i)),
    "glorot_normal": ("normal", lambda i, o: np.sqrt(2 / (i + o))),
    "he_normal": ("normal", lambda i, o: np.sqrt(2 / i)),
    "lecun_normal": ("normal", lambda i, o: np.sqrt(1 / i)),
}


@pytest.mark.parametrize("init", sorted(EXPECTED))
def test_moments_bounds_and_zero_biases(init):
    est, _, _ = _init_only(init)
    W = est.coefs_[0]
    assert W.shape == (FAN_IN, FAN_OUT)
    kind, formula = EXPECTED[init]
    s = formula(FAN_IN, FAN_OUT)
    if kind == "uniform":
        assert np.abs(W).max() <= s
        assert np.abs(W).max() > 0.999 * s  # the whole range is used
        assert abs(W.std() - s / np.sqrt(3)) < 0.01 * s / np.sqrt(3)
        # the shape is uniform: Kolmogorov-Smirnov against U(-s, s)
        assert stats.kstest(W.ravel()[:20000], stats.uniform(-s, 2 * s).cdf).pvalue > 1e-3
    else:
        # Keras: truncated at two (pre-truncation) standard deviations, std s after it
        cut = 2 * s / _init.TRUNCATED_STD
        assert np.abs(W).max() <= cut
        assert np.abs(W).max() > 0.99 * cut
        assert abs(W.std() - s) < 0.01 * s
        truncnorm = stats.truncnorm(-2, 2, scale=s / _init.TRUNCATED_STD)
        assert stats.kstest(W.ravel()[:20000], truncnorm.cdf).pvalue > 1e-3
    assert abs(W.mean()) < 0.01 * s
    for b in est.intercepts_:
        assert_array_equal(b, 0)
    # the second layer (600 -> 1) follows the formula with its own fans
    W1 = est.coefs_[1]
    s1 = formula(FAN_OUT, 1)
    assert np.abs(W1).max() <= (s1 if kind == "uniform" else 2 * s1 / _init.TRUNCATED_STD)


def test_truncated_normal_constant_is_the_truncated_std():
    assert np.isclose(stats.truncnorm(-2, 2).std(), _init.TRUNCATED_STD, rtol=1e-12)


@pytest.mark.parametrize("init", sorted(EXPECTED))
def test_same_seed_same_weights(init):
    X = np.random.RandomState(0).standard_normal((30, 5))
    y = np.arange(30) % 3
    fits = [
        cymlp.MLPClassifier((7, 4), init=init, random_state=s, max_iter=1).fit(X, y)
        for s in (3, 3, 4)
    ]
    for a, b in zip(fits[0].coefs_, fits[1].coefs_):
        assert_array_equal(a, b)
    assert not np.array_equal(fits[0].coefs_[0], fits[2].coefs_[0])


def test_init_changes_weights_and_none_is_scikit_learn():
    """init=None keeps scikit-learn's initial draws bit for bit (the parity tests compare
    whole fits); a Keras scheme draws other weights and zero biases."""
    X = np.random.RandomState(0).standard_normal((40, 6))
    y = np.arange(40) % 2
    params = dict(hidden_layer_sizes=(9, 5), random_state=0, max_iter=1, solver="sgd")
    with warnings.catch_warnings():  # ConvergenceWarning at max_iter=1
        warnings.simplefilter("ignore", ConvergenceWarning)
        for activation in ("relu", "logistic"):
            sk = sknn.MLPClassifier(activation=activation, learning_rate_init=1e-12, **params)
            cy = cymlp.MLPClassifier(activation=activation, learning_rate_init=1e-12, **params)
            sk.fit(X, y)
            cy.fit(X, y)
            for a, b in zip(cy.coefs_ + cy.intercepts_, sk.coefs_ + sk.intercepts_):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
        he = cymlp.MLPClassifier(init="he_uniform", **params).fit(X, y)
    assert not np.allclose(he.coefs_[0], cy.coefs_[0])


def test_sigmoid_draws_like_logistic():
    """'sigmoid' is another name for 'logistic': scikit-learn's narrower bound too."""
    from cymlp._engine import Network

    draws = []
    for activation in ("logistic", "sigmoid"):
        net = Network([6, 8, 1], "logistic", "identity", np.float64)
        _init.initialize_weights(None, activation, np.random.RandomState(0), net)
        draws.append(net.params.copy())
    assert_array_equal(draws[0], draws[1])
    assert np.abs(draws[0][: 6 * 8]).max() <= np.sqrt(2 / 14)


def test_he_normal_trains():
    """A Keras scheme is a working starting point, not only a distribution."""
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = cymlp.MLPClassifier((64,), init="he_normal", random_state=0, max_iter=30)
    with warnings.catch_warnings():  # ConvergenceWarning at max_iter, if it comes
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.score(X, y) > 0.95


def test_invalid_init_is_rejected():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="init"):
        cymlp.MLPRegressor(init="orthogonal").fit(X, np.arange(4.0))


@pytest.mark.parametrize("init", [None, "he_normal"])
def test_batch_norm_starts_with_zero_hidden_intercepts_and_unit_scales(init):
    """With batch normalization the hidden intercepts are unused and stay zero; the
    weights are the same draws as without it (init=None: scikit-learn's stream)."""
    kw = dict(init=init, hidden=(7, 5), n_features=4)
    bn, _, _ = _init_only(batch_normalization=True, **kw)
    plain, _, _ = _init_only(**kw)
    for a, b in zip(bn.coefs_, plain.coefs_):
        assert_array_equal(a, b)
    for b in bn.intercepts_[:-1]:
        assert_array_equal(b, 0)
    assert_array_equal(bn.intercepts_[-1], plain.intercepts_[-1])
    net = bn._network
    assert len(net.bn_scales) == 2
    for gamma, beta in zip(net.bn_scales, net.bn_shifts):
        assert_array_equal(gamma, 1)
        assert_array_equal(beta, 0)
