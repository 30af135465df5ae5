"""Training that diverges stops with a ValueError and keeps the last finite weights."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning

from cymlp import MLPRegressor


def test_non_finite_loss_stops_training_and_keeps_finite_weights():
    X, y = load_diabetes(return_X_y=True)
    # the squared error of targets this large overflows to inf in float64 at once,
    # while one small step keeps the weights finite
    reg = MLPRegressor(
        hidden_layer_sizes=(5,), solver="adam", learning_rate_init=1e-12, max_iter=5, random_state=0
    )
    with pytest.raises(ValueError, match="diverged"):
        reg.fit(X, y * 1e200)
    assert reg.n_iter_ == 0  # stopped in the first epoch
    for w in reg.coefs_ + reg.intercepts_:
        assert np.isfinite(w).all()
    assert np.isfinite(reg.predict(X)).all()


def test_diverging_weights_keep_the_previous_epoch():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)) * 1e3
    y = X @ rng.standard_normal(5)
    reg = MLPRegressor(
        hidden_layer_sizes=(20,),
        solver="sgd",
        learning_rate_init=10.0,
        momentum=0.0,
        max_iter=50,
        random_state=0,
    )
    with pytest.raises(ValueError, match="diverged"):
        reg.fit(X, y)
    finished = reg.n_iter_
    assert finished < 50
    assert all(np.isfinite(w).all() for w in reg.coefs_)
    # the kept weights are those after `finished` epochs: refitting for exactly that many
    # epochs (same seed, same draws) gives them again
    if finished > 0:
        again = MLPRegressor(
            hidden_layer_sizes=(20,),
            solver="sgd",
            learning_rate_init=10.0,
            momentum=0.0,
            max_iter=finished,
            random_state=0,
        )
        with warnings.catch_warnings():  # ConvergenceWarning at max_iter
            warnings.simplefilter("ignore", ConvergenceWarning)
            again.fit(X, y)
        for a, b in zip(again.coefs_, reg.coefs_):
            np.testing.assert_array_equal(a, b)
