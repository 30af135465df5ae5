"""The epoch loop's records and inputs: validation data (X_val / y_val), history_, the
dropout masks' keys, and the verbose=2 progress bar.

Every check compares numbers: the validation loss against the engine's own loss,
history_ against loss_curve_ and the optimizer's rate, a fit with validation data
against one without it, a dropout fit with 1 and 2 threads, a progress-bar fit against
a silent one (bit for bit).
"""

import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from threadpoolctl import threadpool_limits

from cymlp import MLPClassifier, MLPRegressor, _engine, _optim, _training
from cymlp._engine import Network

from _common import (
    binary,
    counts,
    iris,
    multilabel,
    multioutput,
    numpy_forward,
    quiet_fit,
    quiet_partial_fit,
    regression,
    sample_weights,
)

KEYS = ["loss", "score", "learning_rate", "epoch_time"]
VAL_KEYS = ["loss", "score", "val_loss", "val_score", "learning_rate", "epoch_time"]


def _clf(**kw):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_iter": 6, "random_state": 0, **kw})


def _reg(**kw):
    params = {"hidden_layer_sizes": (8,), "max_iter": 6, "random_state": 0, **kw}
    params.setdefault("learning_rate_init", 0.01)
    return MLPRegressor(**params)


def _same_weights(a, b):
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(x, y)


def _differ(a, b):
    return any(
        not np.array_equal(x, y) for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


# ------------------------------------------------------------------- validation data
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_validation_data_must_come_whole(method):
    X, y = regression()
    for kwargs in (
        dict(X_val=X[:20]),
        dict(y_val=y[:20]),
        dict(sample_weight_val=np.ones(20)),
        dict(y_val=y[:20], sample_weight_val=np.ones(20)),
    ):
        est = _reg()
        with pytest.raises(ValueError, match="X_val"):
            getattr(est, method)(X, y, **kwargs)
        assert not hasattr(est, "coefs_")  # raised before anything was fitted


def test_validation_data_are_checked():
    X, y = iris()
    with pytest.raises(ValueError, match="features"):
        _clf().fit(X, y, X_val=X[:10, :3], y_val=y[:10])
    with pytest.raises(ValueError, match="not among the classes"):
        _clf().fit(X, y, X_val=X[:10], y_val=np.full(10, 7))
    with pytest.raises(ValueError, match="inconsistent"):
        _clf().fit(X, y, X_val=X[:10], y_val=y[:9])
    with pytest.raises(ValueError):
        _clf().fit(X, y, X_val=X[:10], y_val=y[:10], sample_weight_val=np.ones(9))
    with pytest.raises(ValueError, match="NaN"):
        _clf().fit(X, y, X_val=np.full((10, 4), np.nan), y_val=y[:10])
    Xr, Y = multioutput()
    with pytest.raises(ValueError, match="outputs"):
        _reg().fit(Xr, Y, X_val=Xr[:10], y_val=Y[:10, :2])
    Xc, yc = counts()
    with pytest.raises(ValueError, match="non-negative"):
        _reg(loss="poisson").fit(Xc, yc, X_val=Xc[:10], y_val=-yc[:10] - 1)
    # partial_fit: the labels must be among `classes`
    with pytest.raises(ValueError, match="not among the classes"):
        MLPClassifier().partial_fit(X, y, classes=[0, 1, 2], X_val=X[:5], y_val=[0, 1, 2, 3, 0])


def test_validation_data_in_other_formats():
    """Lists, float32 rows for a float64 fit, sparse rows, a column y_val: all accepted
    and converted as X is."""
    import scipy.sparse as sp

    X, y = iris()
    ref = quiet_fit(_clf(), X, y, X_val=X[:30], y_val=y[:30])
    for X_val, y_val, rtol in (
        (X[:30].tolist(), list(y[:30]), 1e-12),
        (sp.csr_matrix(X[:30]), y[:30], 1e-12),
        (X[:30].astype(np.float32), y[:30], 1e-6),  # converted to the network's float64
        (X[:30], y[:30].reshape(-1, 1), 1e-12),  # a column: DataConversionWarning
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataConversionWarning)
            est = quiet_fit(_clf(), X, y, X_val=X_val, y_val=y_val)
        assert_allclose(est.history_["val_loss"], ref.history_["val_loss"], rtol=rtol)
        assert est.history_["val_score"] == ref.history_["val_score"]


def test_history_keys_and_lengths():
    X, y = iris()
    est = quiet_fit(_clf(), X, y)
    assert list(est.history_) == KEYS
    assert all(len(v) == est.n_iter_ == 6 for v in est.history_.values())
    assert all(type(v) is float for values in est.history_.values() for v in values)
    assert est.history_["learning_rate"] == [0.001] * 6
    assert all(t > 0 for t in est.history_["epoch_time"])
    assert all(0 <= s <= 1 for s in est.history_["score"])
    est = quiet_fit(_clf(), X, y, X_val=X[:30], y_val=y[:30])
    assert list(est.history_) == VAL_KEYS
    assert all(len(v) == 6 for v in est.history_.values())
    # lbfgs has no epochs: no history (not even one left by an earlier stochastic fit)
    est.set_params(solver="lbfgs", max_iter=5)
    quiet_fit(est, X, y)
    assert not hasattr(est, "history_")


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_history_loss_is_the_data_loss_of_loss_curve(alpha):
    """history_['loss'] is loss_curve_ without the L2 term: equal with alpha=0, smaller
    by the mean L2 term otherwise."""
    X, y = regression()
    est = quiet_fit(_reg(alpha=alpha, batch_size=50), X, y)
    loss, curve = np.array(est.history_["loss"]), np.array(est.loss_curve_)
    if alpha == 0:
        assert_array_equal(loss, curve)
    else:
        assert np.all(loss < curve)
        # the L2 term of the last epoch is close to the one of its final weights
        sq = sum(np.sum(W**2) for W in est.coefs_)
        assert_allclose(curve[-1] - loss[-1], 0.5 * alpha * sq / 50, rtol=0.05)


def test_loss_curve_is_the_engine_objective():
    """finish_stats()['objective'] is train_epoch's summed objective / n_samples, bit for
    bit (loss_curve_ is built from it); batch ranges accumulate into the same sums."""
    X, y = regression()
    X, Y = np.ascontiguousarray(X), np.ascontiguousarray(y.reshape(-1, 1))
    nets, opts, results = [], [], []
    for _ in range(2):
        net = Network([10, 7, 1], "relu", "identity", np.float64)
        net.params[:] = np.random.RandomState(0).uniform(-0.3, 0.3, net.params.size)
        nets.append(net)
        opts.append(_optim.AdamOptimizer(net.params.size, np.float64, 0.01))
    order = np.random.RandomState(1).permutation(len(X))
    stats = nets[0].new_stats()
    total = nets[0].train_epoch(X, Y, None, order, 16, 0.3, opts[0], stats=stats)
    results.append(nets[0].finish_stats(stats))
    assert results[0]["objective"] == total / len(X)
    n_batches = nets[1].n_batches(len(X), 16)
    assert n_batches == 13
    stats = nets[1].new_stats()
    for k0, k1 in ((0, 5), (5, 6), (6, 13)):
        nets[1].train_epoch(X, Y, None, order, 16, 0.3, opts[1], stats=stats, batches=(k0, k1))
    results.append(nets[1].finish_stats(stats))
    assert_array_equal(nets[0].params, nets[1].params)
    assert results[0]["loss"] == results[1]["loss"]
    assert results[0]["score"] == results[1]["score"]
    assert_allclose(results[0]["objective"], results[1]["objective"], rtol=1e-14)


# one network per output head / loss, with the targets it takes
def _heads():
    Xi, yi = iris()
    Yi = np.eye(3)[yi]
    Xb, yb = binary()
    Xm, Ym = multilabel()
    Xr, yr = regression()
    Xo, Yo = multioutput()
    Xc, yc = counts()
    yield "softmax", Xi, Yi, dict()
    yield "logistic", Xb, yb.reshape(-1, 1).astype(float), dict()
    yield "logistic", Xm, Ym.astype(float), dict()
    yield "identity", Xo, Yo, dict()
    yield "identity", Xr, yr.reshape(-1, 1), dict(loss="absolute_error")
    yield "identity", Xr, yr.reshape(-1, 1), dict(loss="huber", huber_delta=0.3)
    yield "exp", Xc, yc.reshape(-1, 1), dict()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_val_loss_is_the_engine_data_loss(dtype, weighted):
    """The numpy loss the validation data get (from the predictions) equals the
    engine's loss_and_grad loss with alpha=0, for every output head and loss."""
    for out, X, Y, kw in _heads():
        net = Network([X.shape[1], 9, Y.shape[1]], "tanh", out, dtype, **kw)
        net.params[:] = np.random.RandomState(3).uniform(-0.5, 0.5, net.params.size)
        X = np.ascontiguousarray(X, dtype=dtype)
        sw = sample_weights(len(X)).astype(dtype) if weighted else None
        expected = net.loss_and_grad(X, Y, sw, 0.0)[0]
        got = _training.data_loss(net, net.predict(X), Y, sw)
        rtol = 1e-12 if dtype == np.float64 else 1e-5
        assert_allclose(got, expected, rtol=rtol, err_msg=f"{out} {kw}")


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: _clf(), iris),
        (lambda: _clf(), binary),
        (lambda: _clf(), multilabel),
        (lambda: _reg(), multioutput),
        (lambda: _reg(loss="huber"), regression),
        (lambda: _reg(loss="poisson"), counts),
    ],
)
def test_val_metrics_are_those_of_the_final_weights(make, data):
    """The last epoch's val_loss / val_score are the loss (engine, alpha=0) and the score
    of the fitted estimator on the validation data."""
    X, y = data()
    X_val, y_val, sw_val = X[::3], y[::3], sample_weights(len(X[::3]))
    est = quiet_fit(make(), X, y, X_val=X_val, y_val=y_val, sample_weight_val=sw_val)
    Y_val = y_val if y_val.ndim == 2 else y_val.reshape(-1, 1)
    if hasattr(est, "classes_") and Y_val.shape[1] == 1 and len(est.classes_) > 2:
        Y_val = est._label_binarizer.transform(y_val)
    loss = est._network.loss_and_grad(np.ascontiguousarray(X_val), Y_val, sw_val, 0.0)[0]
    assert_allclose(est.history_["val_loss"][-1], loss, rtol=1e-12)
    assert est.history_["val_score"][-1] == est.score(X_val, y_val, sample_weight=sw_val)


def test_validation_data_replace_the_split():
    """With X_val and early_stopping, no rows are held out and no split is drawn: the
    first epoch is that of a fit without early stopping; the validation scores are the
    history's, and the best epoch's weights are restored."""
    X, y = iris()
    X_val, y_val = X[::4], y[::4]
    one = quiet_fit(_clf(max_iter=1, early_stopping=True), X, y, X_val=X_val, y_val=y_val)
    plain = quiet_fit(_clf(max_iter=1), X, y)
    _same_weights(one, plain)
    assert one.t_ == len(X)  # every row trained on

    est = _clf(early_stopping=True, max_iter=60, n_iter_no_change=3, learning_rate_init=0.05, tol=0)
    quiet_fit(est, X, y, X_val=X_val, y_val=y_val)
    assert est.t_ == est.n_iter_ * len(X)
    assert est.validation_scores_ == est.history_["val_score"]
    assert est.best_validation_score_ == max(est.history_["val_score"])
    assert est.score(X_val, y_val) == est.best_validation_score_
    best = int(np.argmax(est.history_["val_score"]))
    assert_allclose(
        _training.data_loss(est._network, est.predict_proba(X_val), np.eye(3)[y_val]),
        est.history_["val_loss"][best],
        rtol=1e-12,
    )


def test_early_stopping_split_records_validation_metrics():
    """early_stopping's held-out split is validation data too: val_score is
    validation_scores_, val_loss is recorded beside it."""
    X, y = iris()
    est = quiet_fit(_clf(early_stopping=True, max_iter=8), X, y)
    assert list(est.history_) == VAL_KEYS
    assert est.history_["val_score"] == est.validation_scores_
    assert all(np.isfinite(est.history_["val_loss"]))


def test_history_continues_across_partial_fit_and_warm_start():
    X, y = iris()
    est = _clf()
    for _ in range(3):
        quiet_partial_fit(est, X, y, classes=[0, 1, 2])
    assert len(est.history_["loss"]) == 3
    # validation data for one call only: NaN for the epochs without
    quiet_partial_fit(est, X, y, X_val=X[:20], y_val=y[:20])
    quiet_partial_fit(est, X, y)
    assert list(est.history_) == VAL_KEYS
    assert all(len(v) == 5 for v in est.history_.values())
    val = est.history_["val_loss"]
    assert np.isnan(val[:3]).all() and np.isfinite(val[3]) and np.isnan(val[4])

    est = quiet_fit(_clf(max_iter=3, warm_start=True), X, y)
    assert len(est.history_["loss"]) == 3
    quiet_fit(est, X, y)
    assert len(est.history_["loss"]) == 6
    quiet_partial_fit(est, X, y)
    assert len(est.history_["loss"]) == 7
    est.set_params(warm_start=False)
    quiet_fit(est, X, y)  # a fresh fit starts a new history
    assert len(est.history_["loss"]) == 3


def test_history_learning_rate_follows_the_optimizer():
    X, y = regression()
    est = quiet_fit(
        _reg(solver="sgd", learning_rate="invscaling", learning_rate_init=0.05, power_t=0.5),
        X,
        y,
    )
    # invscaling: eta0 / (t + 1) ** power_t, t = samples seen before the epoch
    expected = [0.05] + [0.05 / (k * len(X) + 1) ** 0.5 for k in range(1, 6)]
    assert_allclose(est.history_["learning_rate"], expected, rtol=1e-15)


# --------------------------------------------------------------------------- dropout
def _dropout_clf(**kw):
    return _clf(**{"hidden_layer_sizes": (16, 12), "dropout": [0.3, 0.2], "max_iter": 4, **kw})


def test_dropout_changes_the_weights_reproducibly():
    X, y = iris()
    a = quiet_fit(_dropout_clf(), X, y)
    b = quiet_fit(_dropout_clf(), X, y)
    _same_weights(a, b)
    assert a.history_["loss"] == b.history_["loss"]
    plain = quiet_fit(_dropout_clf().set_params(dropout=0.0), X, y)
    assert _differ(a, plain)
    assert quiet_fit(_dropout_clf(random_state=1), X, y).history_["loss"] != a.history_["loss"]
    # rates of zero draw no seed: scikit-learn's draws, the plain network's weights
    zeros = quiet_fit(_dropout_clf().set_params(dropout=[0.0, 0.0]), X, y)
    _same_weights(zeros, plain)


def test_prediction_after_dropout_is_deterministic_and_unmasked():
    X, y = iris()
    est = quiet_fit(_dropout_clf(), X, y)
    p = est.predict_proba(X)
    assert_array_equal(p, est.predict_proba(X))
    expected = numpy_forward(est.coefs_, est.intercepts_, "relu", "softmax", X)
    assert_allclose(p, expected, rtol=1e-12)


class _Spy:
    """Stands in for an estimator's network and records the engine calls of a fit."""

    def __init__(self, network):
        self._network = network
        self.calls = []

    def __getattr__(self, name):
        return getattr(self._network, name)

    def train_epoch(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self._network.train_epoch(*args, **kwargs)


def test_dropout_masks_depend_on_the_epoch_and_the_seed():
    X, y = iris()
    Y = np.eye(3)[y]
    net = Network([4, 20, 3], "relu", "softmax", np.float64, dropout=[0.5])
    net.params[:] = np.random.RandomState(0).uniform(-0.5, 0.5, net.params.size)
    X = np.ascontiguousarray(X)

    def grad(epoch, seed):
        return net.loss_and_grad(X, Y, None, 0.0, training=True, epoch=epoch, seed=seed)[1]

    assert_array_equal(grad(0, 5), grad(0, 5))
    assert not np.array_equal(grad(0, 5), grad(1, 5))
    assert not np.array_equal(grad(0, 5), grad(0, 6))


def test_engine_calls_carry_the_global_epoch_and_one_seed_per_fit():
    """One engine call per epoch (no Python per mini-batch); the masks are keyed by the
    epoch's global number (continuing across warm-start fits) and by a seed drawn once
    per fit from random_state, the first draw of a warm-start fit (no weight draws)."""
    X, y = iris()
    est = quiet_fit(_dropout_clf(max_iter=3, warm_start=True), X, y)
    est._network = spy = _Spy(est._network)
    quiet_fit(est, X, y)
    assert len(spy.calls) == est.n_iter_ == 3
    assert [c["epoch"] for c in spy.calls] == [3, 4, 5]
    seed = np.random.RandomState(0).randint(np.iinfo(np.int64).max)
    assert all(c["seed"] == seed for c in spy.calls)
    assert all(c.get("batches") is None for c in spy.calls)
    # without dropout no seed is drawn (scikit-learn's draws stay as they are)
    est = quiet_fit(_clf(max_iter=2, warm_start=True), X, y)
    est._network = spy = _Spy(est._network)
    quiet_fit(est, X, y)
    assert [(c["epoch"], c["seed"]) for c in spy.calls] == [(2, 0), (3, 0)]


@pytest.fixture
def split_everything():
    """Every GEMM, gather and optimizer step cut into blocks that threads share."""
    old = _engine._tuning(block=8, split_min_flops=0, gather_split_min=1)
    old_step = _optim._tuning(parallel_min=1)
    yield
    _engine._tuning(**old)
    _optim._tuning(parallel_min=old_step)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dropout_masks_do_not_depend_on_the_thread_count(dtype, split_everything):
    X, y = iris()
    results = []
    for n_threads in (1, 2):
        with threadpool_limits(limits=n_threads, user_api="openmp"):
            est = _clf(
                hidden_layer_sizes=(40, 24),
                dropout=[0.5, 0.25],
                batch_size=50,
                dtype=dtype,
                max_iter=3,
            )
            results.append(quiet_fit(est, X, y))
    _same_weights(*results)
    assert results[0].history_["loss"] == results[1].history_["loss"]


def test_dropout_seed_is_drawn_per_partial_fit_call():
    """partial_fit rebuilds the RandomState at every call: an integer random_state
    draws the same seed each time, but the epoch number still changes the masks."""
    X, y = iris()
    a, b = _dropout_clf(shuffle=False), _dropout_clf(shuffle=False)
    quiet_partial_fit(a, X, y, classes=[0, 1, 2])
    quiet_partial_fit(b, X, y, classes=[0, 1, 2])
    _same_weights(a, b)
    quiet_partial_fit(a, X, y)
    assert a.history_["loss"][1] != a.history_["loss"][0]


# --------------------------------------------------------------------- verbose=2 bar
@pytest.mark.parametrize("batch_size", [4, 64])  # 38 batches (20 pieces) and 3
def test_progress_bar_shows_loss_and_changes_nothing(batch_size, capsys):
    pytest.importorskip("tqdm")
    X, y = iris()
    kw = dict(batch_size=batch_size, max_iter=3, alpha=0.0, dropout=0.1)
    silent = quiet_fit(_clf(**kw), X, y, X_val=X[:30], y_val=y[:30])
    capsys.readouterr()
    shown = quiet_fit(_clf(verbose=2, **kw), X, y, X_val=X[:30], y_val=y[:30])
    out = capsys.readouterr()
    assert "Iteration" not in out.out  # the bar replaces scikit-learn's lines
    for text in ("Epoch 1", "Epoch 3", "loss=", "val_loss=", "val_score=", "batch"):
        assert text in out.err, text
    n_batches = -(-len(X) // batch_size)
    assert f"{n_batches}/{n_batches}" in out.err
    _same_weights(silent, shown)
    assert silent.loss_curve_ == shown.loss_curve_
    for key in ("loss", "score", "val_loss", "val_score", "learning_rate"):
        assert silent.history_[key] == shown.history_[key], key


def test_progress_bar_with_l2_and_partial_fit(capsys):
    pytest.importorskip("tqdm")
    X, y = regression()
    silent = quiet_fit(_reg(batch_size=8, alpha=0.1), X, y)
    shown = quiet_fit(_reg(batch_size=8, alpha=0.1, verbose=2), X, y)
    _same_weights(silent, shown)
    assert silent.history_["loss"] == shown.history_["loss"]
    # the L2 term's sum of squares is carried from piece to piece: the same bits
    assert silent.loss_curve_ == shown.loss_curve_
    capsys.readouterr()
    quiet_partial_fit(shown, X, y)
    assert "Epoch 7" in capsys.readouterr().err


def test_progress_bar_without_tqdm_falls_back_to_lines(monkeypatch, capsys):
    # scikit-learn code may pass verbose=10: without tqdm it must still run, with
    # scikit-learn's lines and a warning that says what the bar needs
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    X, y = iris()
    silent = quiet_fit(_clf(max_iter=3), X, y)
    capsys.readouterr()
    with pytest.warns(UserWarning, match="pip install tqdm"):
        shown = quiet_fit(_clf(verbose=10, max_iter=3), X, y)
    out = capsys.readouterr()
    assert "Iteration 3, loss = " in out.out
    assert "batch" not in out.err
    _same_weights(silent, shown)


def test_lbfgs_verbose_2_is_scikit_learns_verbose(capfd):
    # lbfgs has no epochs and no bar: verbose=2 does what it does in scikit-learn (SciPy's
    # L-BFGS-B output, where SciPy still prints one), and the weights are a silent fit's
    X, y = iris()
    kw = dict(solver="lbfgs", max_iter=5, hidden_layer_sizes=(4,), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        silent = MLPClassifier(**kw).fit(X, y)
        capfd.readouterr()
        shown = MLPClassifier(verbose=2, **kw).fit(X, y)
        out = capfd.readouterr()
        sknn.MLPClassifier(verbose=2, **kw).fit(X, y)
    assert out == capfd.readouterr()
    _same_weights(silent, shown)


def test_verbose_1_keeps_scikit_learn_lines(capsys):
    X, y = iris()
    quiet_fit(_clf(verbose=1, max_iter=2, early_stopping=True), X, y)
    out = capsys.readouterr()
    assert "Iteration 1, loss = " in out.out and "Validation score: " in out.out
    assert "batch" not in out.err


# ---------------------------------------------------------------------------- lbfgs
@pytest.mark.parametrize(
    "kwargs, fit_kwargs, what",
    [
        (dict(dropout=0.2), {}, "dropout"),
        (dict(batch_normalization=True), {}, "batch_normalization"),
        ({}, "val", "validation data"),
    ],
)
def test_lbfgs_has_no_epochs(kwargs, fit_kwargs, what):
    X, y = iris()
    if fit_kwargs == "val":
        fit_kwargs = dict(X_val=X[:10], y_val=y[:10])
    est = _clf(solver="lbfgs", **kwargs)
    with pytest.raises(ValueError, match=f"lbfgs.*{what.split('=')[0]}"):
        est.fit(X, y, **fit_kwargs)
    assert not hasattr(est, "coefs_")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the regressor's partial_fit runs lbfgs too (scikit-learn's quirk): same rules
        Xr, yr = regression()
        with pytest.raises(ValueError, match="lbfgs"):
            reg = _reg(solver="lbfgs", **kwargs)
            reg.partial_fit(Xr, yr, **({} if not fit_kwargs else dict(X_val=Xr, y_val=yr)))
