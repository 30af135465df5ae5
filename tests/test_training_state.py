"""What an epoch leaves behind when it fails, diverges or is continued with other
parameters: the estimator must stay consistent (weights, batch-norm statistics and the
optimizer's state belong together)."""

import copy
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn import neural_network as sknn
from sklearn.datasets import load_diabetes, load_iris
from sklearn.exceptions import ConvergenceWarning

from cymlp import MLPClassifier, MLPRegressor
from cymlp.callbacks import TerminateOnNaN


def _diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X, y / y.std()


def _state(est):
    opt = est._optimizer
    return (
        [est._network.params.copy(), est._network.running.copy()]
        + [s.copy() for s in opt.state_arrays()]
        + [getattr(opt, "t", 0), opt.learning_rate]
    )


def _same(a, b):
    for x, y in zip(_state(a), _state(b)):
        assert_array_equal(x, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("callback", [False, True])
def test_a_diverging_epoch_is_undone_with_the_optimizer(solver, callback):
    X, y = _diabetes()
    kw = dict(hidden_layer_sizes=(8,), solver=solver, random_state=0, batch_size=50)
    if callback:
        kw["callbacks"] = [TerminateOnNaN()]
    est = MLPRegressor(learning_rate_init=1e-3, **kw).partial_fit(X, y)
    twin = copy.deepcopy(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if callback:  # stops quietly, keeping the last finite epoch
            est.partial_fit(X, y * 1e200)
        else:
            with pytest.raises(ValueError, match="diverged"):
                est.partial_fit(X, y * 1e200)
    _same(est, twin)  # weights and optimizer as before the bad epoch
    est.partial_fit(X, y)
    twin.partial_fit(X, y)
    _same(est, twin)


def test_an_epoch_that_fails_part_way_is_undone():
    X, y = _diabetes()
    sw = np.ones(len(X))
    sw[50:100] = 0  # the second mini-batch weighs nothing: its loss is undefined
    est = MLPRegressor(hidden_layer_sizes=(8,), batch_size=50, shuffle=False, random_state=0)
    est.partial_fit(X, y)
    before = copy.deepcopy(est)
    with pytest.raises(ValueError, match="sum to zero"):
        est.partial_fit(X, y, sample_weight=sw)
    _same(est, before)  # the first mini-batch's step was taken back
    assert est.loss_curve_ == before.loss_curve_


def test_batch_norm_needs_two_rows_per_batch():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="at least 2 rows"):
        MLPClassifier((4,), batch_normalization=True, batch_size=1).fit(X, y)
    with pytest.warns(UserWarning, match="last mini-batch of each epoch has one row"):
        MLPClassifier((4,), batch_normalization=True, batch_size=149, max_iter=1).fit(X, y)


def test_early_stopping_restores_matching_running_statistics():
    # no epoch beats the initial state: the initial weights come back, and with them the
    # initial running statistics (not those training left)
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 5))
    y = X[:, 0] * 1e30
    est = MLPRegressor(
        hidden_layer_sizes=(8,), batch_normalization=True, early_stopping=True, solver="sgd",
        learning_rate_init=10.0, max_iter=3, random_state=0,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
        except ValueError as error:  # the final check may refuse non-finite statistics
            assert "non-finite" in str(error)
    assert np.isfinite(est._network.params).all()
    assert np.isfinite(est._network.running).all()


def test_warm_start_follows_a_changed_activation_as_scikit_learn():
    X, y = load_iris(return_X_y=True)
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, warm_start=True)
    ours, theirs = MLPClassifier(**kw), sknn.MLPClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in (ours, theirs):
            est.fit(X, y)
            est.set_params(activation="tanh")
            est.fit(X, y)
    assert ours._network.hidden_activation == "tanh"
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_warm_start_and_partial_fit_take_new_dropout_and_loss():
    X, y = _diabetes()
    est = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        est.set_params(dropout=0.5, loss="huber", huber_delta=0.5)
        est.fit(X, y)
    assert est._network.dropout == [0.5]
    assert est._network.loss == "huber" and est._network.huber_delta == 0.5
    assert est.coefs_[0].base is not None  # still views of the new network's buffer
    est.set_params(batch_normalization=True)
    with pytest.raises(ValueError, match="batch_normalization"):
        est.fit(X, y)
    est.set_params(batch_normalization=False, loss="poisson")
    with pytest.raises(ValueError, match="output activation"):
        est.partial_fit(X, np.abs(y))


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "rmsprop"])
def test_optimizer_snapshot_owns_its_state(solver):
    # the copy an epoch is undone to must not move with the live optimizer
    X, y = _diabetes()
    est = MLPRegressor(hidden_layer_sizes=(8,), solver=solver, random_state=0)
    est.partial_fit(X, y)
    snap = est._optimizer.snapshot()
    saved = [s.copy() for s in snap.state_arrays()]
    assert type(snap) is type(est._optimizer)
    est.partial_fit(X, y)
    for live, kept, before in zip(est._optimizer.state_arrays(), snap.state_arrays(), saved):
        assert not np.shares_memory(live, kept)
        assert_array_equal(kept, before)
        assert not np.array_equal(live, before)
