"""cymlp.callbacks: the hooks' order and arguments, each callback's effect on training
(compared with a fit that gets the same effect from its parameters), and the rules
(lbfgs, scikit-learn's schedules, val_* without validation data, clone safety)."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_diabetes
from sklearn.model_selection import GridSearchCV

import cymlp
from cymlp import MLPClassifier, MLPRegressor, _training
from cymlp.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)

from _common import iris, quiet_fit, quiet_partial_fit, regression


def _clf(**kw):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_iter": 8, "random_state": 0, **kw})


def _reg(**kw):
    params = {"hidden_layer_sizes": (8,), "max_iter": 8, "random_state": 0, **kw}
    params.setdefault("learning_rate_init", 0.01)
    return MLPRegressor(**params)


def _same_weights(a, b):
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_array_equal(x, y)


class Recorder(Callback):
    """Records every hook call; stops after epoch `stop_at`."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.calls = []

    def on_train_begin(self, estimator, logs):
        self.calls.append(("train_begin", None, dict(logs)))

    def on_epoch_begin(self, estimator, epoch, logs):
        self.calls.append(("epoch_begin", epoch, dict(logs)))

    def on_epoch_end(self, estimator, epoch, logs):
        self.calls.append(("epoch_end", epoch, dict(logs)))
        # the estimator is up to date when the hook runs
        assert len(estimator.history_["loss"]) == epoch + 1
        logs["loss"] = -1.0  # a callback's changes to logs do not reach history_
        return epoch == self.stop_at

    def on_train_end(self, estimator, logs):
        self.calls.append(("train_end", None, dict(logs)))


# -------------------------------------------------------------------- the protocol
def test_a_callback_stops_training_and_sees_every_epoch():
    X, y = iris()
    rec = Recorder(stop_at=2)
    est = quiet_fit(_clf(callbacks=[rec]), X, y, X_val=X[:30], y_val=y[:30])
    assert est.n_iter_ == 3 and len(est.history_["loss"]) == 3
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["train_begin"] + ["epoch_begin", "epoch_end"] * 3 + ["train_end"]
    assert [c[1] for c in rec.calls if c[0] == "epoch_end"] == [0, 1, 2]
    for epoch, (_, _, logs) in enumerate(c for c in rec.calls if c[0] == "epoch_end"):
        assert logs == {key: values[epoch] for key, values in est.history_.items()}
    assert rec.calls[-1][2] == {key: values[-1] for key, values in est.history_.items()}
    assert min(est.history_["loss"]) > 0


class MaxNorm(Callback):
    """A Keras kernel constraint as a callback: rescales the first layer's weights to a
    norm of at most 1 after every epoch, by assigning a new array or in place."""

    def __init__(self, assign):
        self.assign = assign
        self.live = []

    def on_epoch_end(self, estimator, epoch, logs):
        W = estimator.coefs_[0]
        self.live.append(np.shares_memory(W, estimator._network.params))
        scaled = W / max(1.0, np.linalg.norm(W))
        if self.assign:
            estimator.coefs_[0] = scaled
        else:
            W[...] = scaled


def test_weights_a_hook_assigns_are_trained_on():
    # An array assigned to coefs_ in a hook once stayed outside the network: training went
    # on from the old weights, and the stale array overwrote them at the next predict.
    X, y = iris()
    fits = {}
    for assign in (True, False):
        cb = MaxNorm(assign)
        fits[assign] = quiet_fit(_clf(max_iter=4, learning_rate_init=0.1, callbacks=[cb]), X, y)
        assert all(cb.live), "a hook saw coefs_ that are not the weights being trained"
    assert np.linalg.norm(fits[True].coefs_[0]) <= 1 + 1e-12
    _same_weights(fits[True], fits[False])
    assert_array_equal(fits[True].predict_proba(X), fits[False].predict_proba(X))


def test_every_callback_sees_the_epoch_a_stop_comes_from():
    X, y = iris()
    first, second = Recorder(stop_at=1), Recorder()
    quiet_fit(_clf(callbacks=[first, second]), X, y)
    assert [c[1] for c in second.calls if c[0] == "epoch_end"] == [0, 1]


def test_partial_fit_is_one_epoch():
    X, y = iris()
    rec = Recorder(stop_at=0)
    est = _clf(callbacks=[rec])
    for _ in range(3):
        quiet_partial_fit(est, X, y, classes=[0, 1, 2])
    assert [c[:2] for c in rec.calls] == [
        ("epoch_begin", 0),
        ("epoch_end", 0),
        ("epoch_begin", 1),
        ("epoch_end", 1),
        ("epoch_begin", 2),
        ("epoch_end", 2),
    ]


def test_callbacks_list_is_left_alone_and_clones_reset():
    X, y = iris()
    stopper = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    callbacks = [stopper]
    est = quiet_fit(_clf(callbacks=callbacks), X, y)
    assert est.callbacks is callbacks and callbacks == [stopper]
    assert est.n_iter_ == 2 and stopper.stopped_epoch == 1
    # the same callback object trains a second estimator from a fresh state
    again = quiet_fit(_clf(callbacks=callbacks), X, y)
    assert again.n_iter_ == 2
    _same_weights(est, again)
    # clones carry copies: fitting a clone leaves the original callback untouched
    fresh = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    copy = clone(_clf(callbacks=[fresh]))
    assert copy.callbacks[0] is not fresh
    quiet_fit(copy, X, y)
    assert copy.callbacks[0].stopped_epoch == 1 and fresh.stopped_epoch is None
    assert repr(fresh) == (
        "EarlyStopping(monitor='loss', patience=0, min_delta=10.0, mode='auto', "
        "restore_best_weights=False)"
    )


def test_grid_search_over_callbacks():
    X, y = iris()
    stopper = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    search = GridSearchCV(_clf(learning_rate_init=0.05), {"callbacks": [None, [stopper]]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)
    # the stopper (min_delta=10: no epoch improves enough) ends each fit after 2 epochs, which
    # at this rate score far below the 8 epochs of max_iter: the search picks no callbacks
    # and refits for all 8
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > scores[1] + 0.2, scores
    assert search.best_params_["callbacks"] is None
    assert search.best_estimator_.n_iter_ == 8
    # with the stopper as the only candidate, the refit estimator stops too: on a clone,
    # leaving the grid's callback object untouched
    search = GridSearchCV(_clf(learning_rate_init=0.05), {"callbacks": [[stopper]]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y)
    assert search.best_estimator_.n_iter_ == 2
    assert search.best_estimator_.callbacks[0].stopped_epoch == 1
    assert stopper.stopped_epoch is None


def test_callbacks_must_be_callback_objects():
    X, y = iris()
    with pytest.raises(TypeError, match="Callback"):
        _clf(callbacks=[lambda est: None]).fit(X, y)


# ------------------------------------------------------------------------- the rules
class KerasStyle(Callback):
    def on_epoch_end(self, epoch, logs=None):  # Keras's signature: no estimator
        pass


class Flexible(Callback):
    def on_epoch_end(self, *args, **kwargs):
        self.args = args


def test_hook_signatures_are_checked_before_training():
    X, y = iris()
    est = _clf(callbacks=[KerasStyle()])
    with pytest.raises(TypeError, match=r"KerasStyle.on_epoch_end must take \(estimator, epoch"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")
    cb = Flexible()
    quiet_fit(_clf(max_iter=2, callbacks=[cb]), X, y)
    assert cb.args[1] == 1


def test_lbfgs_refuses_callbacks():
    X, y = iris()
    est = _clf(solver="lbfgs", callbacks=[Recorder()])
    with pytest.raises(ValueError, match="lbfgs.*callbacks"):
        est.fit(X, y)
    quiet_fit(_clf(solver="lbfgs", callbacks=[]), X, y)  # an empty list is no callback


@pytest.mark.parametrize("name", ["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"])
def test_monitoring_validation_needs_validation_data(name, tmp_path):
    def make():
        if name == "ModelCheckpoint":
            return ModelCheckpoint(tmp_path / "m", save_best_only=True)
        return {"EarlyStopping": EarlyStopping, "ReduceLROnPlateau": ReduceLROnPlateau}[name]()

    X, y = iris()
    est = _clf(callbacks=[make()])
    with pytest.raises(ValueError, match="val_loss.*validation data"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")  # raised at the start
    with pytest.raises(ValueError, match="validation data"):
        est.partial_fit(X, y, classes=[0, 1, 2])
    # X_val or early_stopping's split are validation data
    quiet_fit(_clf(callbacks=[make()], max_iter=2), X, y, X_val=X, y_val=y)
    quiet_fit(_clf(callbacks=[make()], max_iter=2, early_stopping=True), X, y)
    # a checkpoint that saves every epoch monitors nothing
    quiet_fit(_clf(callbacks=[ModelCheckpoint(tmp_path / "m")], max_iter=1), X, y)


def test_unknown_monitor_raises():
    X, y = iris()
    with pytest.raises(ValueError, match="'accuracy', which is not recorded"):
        _clf(callbacks=[EarlyStopping(monitor="accuracy")]).fit(X, y)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=2.0)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: EarlyStopping(patience="3"), TypeError, "patience must be an integer, got '3'"),
        (lambda: EarlyStopping(patience=True), TypeError, "patience must be an integer"),
        (lambda: EarlyStopping(patience=-1), ValueError, "patience must be >= 0, got -1"),
        (lambda: EarlyStopping(monitor=None), TypeError, "monitor must be .*got None"),
        (lambda: EarlyStopping(min_delta="x"), TypeError, "min_delta must be a number"),
        (lambda: EarlyStopping(min_delta=np.nan), ValueError, "min_delta must be finite"),
        (lambda: EarlyStopping(restore_best_weights="yes"), TypeError, "restore_best_weights"),
        (lambda: EarlyStopping(mode=None), ValueError, "mode must be .*got None"),
        (lambda: ReduceLROnPlateau(patience="2"), TypeError, "patience must be an integer"),
        (lambda: ReduceLROnPlateau(factor="x"), TypeError, "factor must be a number"),
        (lambda: ReduceLROnPlateau(factor=1), ValueError, r"factor must lie in \(0, 1\)"),
        (lambda: ReduceLROnPlateau(factor=0.0), ValueError, r"factor must lie in \(0, 1\)"),
        (lambda: ReduceLROnPlateau(min_lr=-1e-3), ValueError, "min_lr must be >= 0"),
        (lambda: ReduceLROnPlateau(min_lr=None), TypeError, "min_lr must be a number"),
        (lambda: ReduceLROnPlateau(cooldown=1.5), TypeError, "cooldown must be an integer"),
        (lambda: ReduceLROnPlateau(mode="up"), ValueError, "mode must be"),
        (lambda: LearningRateScheduler(None), TypeError, "schedule must be a function"),
        (lambda: LearningRateScheduler(0.1), TypeError, "schedule must be a function"),
        (lambda: ModelCheckpoint(None), TypeError, "filepath must be a str or os.PathLike"),
        (lambda: ModelCheckpoint(3), TypeError, "filepath must be a str or os.PathLike"),
        (lambda: ModelCheckpoint(""), ValueError, "filepath is empty"),
        (lambda: ModelCheckpoint("m", save_best_only="no"), TypeError, "save_best_only"),
        (lambda: ModelCheckpoint("m", mode="best"), ValueError, "mode must be"),
    ],
)
def test_constructor_arguments_are_checked(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
@pytest.mark.parametrize(
    "callback", [LearningRateScheduler(lambda e, lr: lr), ReduceLROnPlateau(monitor="loss")]
)
def test_rate_callbacks_exclude_scikit_learn_schedules(schedule, callback):
    X, y = iris()
    with pytest.raises(ValueError, match=f"learning_rate='{schedule}'"):
        _clf(solver="sgd", learning_rate=schedule, callbacks=[callback]).fit(X, y)
    # the rate schedule of adam is its own: learning_rate is unused there
    quiet_fit(_clf(learning_rate=schedule, callbacks=[callback], max_iter=2), X, y)


def test_patience_beyond_n_iter_no_change_warns():
    X, y = iris()
    est = _clf(callbacks=[EarlyStopping(monitor="loss", patience=11)], max_iter=2)
    with pytest.warns(UserWarning, match="n_iter_no_change=10"):
        quiet_fit(est, X, y)
    est.set_params(n_iter_no_change=np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        quiet_fit(est, X, y)


def test_scikit_learn_rule_runs_beside_callbacks():
    X, y = iris()
    plain = quiet_fit(_clf(max_iter=300, tol=1e-2, n_iter_no_change=2), X, y)
    assert plain.n_iter_ < 300
    with_cb = quiet_fit(
        _clf(max_iter=300, tol=1e-2, n_iter_no_change=2, callbacks=[Recorder()]), X, y
    )
    assert with_cb.n_iter_ == plain.n_iter_
    _same_weights(plain, with_cb)


# -------------------------------------------------------------------- EarlyStopping
@pytest.mark.parametrize("patience, epochs", [(0, 2), (1, 2), (3, 4)])
def test_early_stopping_patience(patience, epochs):
    """min_delta larger than any change: only the first epoch improves, so training
    stops after `patience` more (Keras's count: 0 and 1 both stop at once)."""
    X, y = iris()
    cb = EarlyStopping(monitor="loss", patience=patience, min_delta=10.0)
    est = quiet_fit(_clf(callbacks=[cb]), X, y)
    assert est.n_iter_ == epochs
    assert cb.stopped_epoch == epochs - 1
    assert cb.best == est.history_["loss"][0]


def test_early_stopping_modes():
    """'auto' maximises a score, minimises a loss; the callback does not stop a fit
    whose monitored quantity keeps improving."""
    X, y = iris()
    for monitor in ("loss", "val_loss", "val_score"):
        cb = EarlyStopping(monitor=monitor, patience=3)
        est = quiet_fit(_clf(callbacks=[cb], max_iter=30), X, y, X_val=X, y_val=y)
        values = est.history_[monitor]
        best = max(values) if "score" in monitor else min(values)
        assert cb.best == best
        if cb.stopped_epoch is None:
            assert est.n_iter_ == 30


def test_early_stopping_restores_the_best_weights():
    """mode='max' on the falling training loss: the best epoch is the first, whose
    weights come back at the end -- those of a one-epoch fit."""
    X, y = iris()
    cb = EarlyStopping(monitor="loss", mode="max", patience=10, restore_best_weights=True)
    est = quiet_fit(_clf(callbacks=[cb], max_iter=5), X, y)
    assert est.n_iter_ == 5 and cb.stopped_epoch is None
    _same_weights(est, quiet_fit(_clf(max_iter=1), X, y))
    # with a validation set: the weights of the lowest val_loss
    cb = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    Xr, yr = regression()
    est = quiet_fit(
        _reg(callbacks=[cb], max_iter=200, learning_rate_init=0.05, n_iter_no_change=np.inf),
        Xr[:100],
        yr[:100],
        X_val=Xr[100:],
        y_val=yr[100:],
    )
    assert cb.stopped_epoch is not None and est.n_iter_ < 200
    val_loss = _training.data_loss(est._network, est.predict(Xr[100:]).reshape(-1, 1), yr[100:])
    assert_allclose(val_loss, min(est.history_["val_loss"]), rtol=1e-12)
    assert val_loss < est.history_["val_loss"][-1]


# ---------------------------------------------------------------- learning rates
@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "rmsprop"])
def test_schedule_rates_appear_in_history_and_are_used(solver):
    X, y = regression()
    rates = [0.02 * 0.5**e for e in range(5)]
    sched = LearningRateScheduler(lambda epoch, lr: 0.02 * 0.5**epoch)
    est = quiet_fit(_reg(solver=solver, callbacks=[sched], max_iter=5), X, y)
    assert_allclose(est.history_["learning_rate"], rates, rtol=1e-15)
    # a constant schedule gives a fit with that learning_rate_init, bit for bit
    const = LearningRateScheduler(lambda epoch, lr: 0.02)
    a = quiet_fit(_reg(solver=solver, callbacks=[const], max_iter=3), X, y)
    b = quiet_fit(_reg(solver=solver, learning_rate_init=0.02, max_iter=3), X, y)
    _same_weights(a, b)
    assert a.history_["loss"] == b.history_["loss"]
    assert not np.allclose(est.history_["loss"][:3], a.history_["loss"])


def test_schedule_sees_global_epochs_and_the_current_rate():
    X, y = regression()
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr * 0.5

    est = quiet_fit(
        _reg(callbacks=[LearningRateScheduler(schedule)], max_iter=2, warm_start=True), X, y
    )
    quiet_fit(est, X, y)  # warm start: a new optimizer at learning_rate_init
    quiet_partial_fit(est, X, y)
    assert [e for e, _ in seen] == [0, 1, 2, 3, 4]
    assert_allclose([lr for _, lr in seen], [0.01, 0.005, 0.01, 0.005, 0.0025])
    assert_allclose(est.history_["learning_rate"], [0.005, 0.0025, 0.005, 0.0025, 0.00125])
    with pytest.raises(ValueError, match="must be > 0"):
        _reg(callbacks=[LearningRateScheduler(lambda e, lr: -1.0)]).fit(X, y)
    with pytest.raises(ValueError, match="not a number"):
        _reg(callbacks=[LearningRateScheduler(lambda e, lr: "fast")]).fit(X, y)


def test_schedule_of_the_epoch_alone():
    # Keras's older form, schedule(epoch), which Keras 3 still accepts
    X, y = regression()
    one = quiet_fit(_reg(callbacks=[LearningRateScheduler(lambda e: 0.01 / (e + 1))]), X, y)
    two = quiet_fit(_reg(callbacks=[LearningRateScheduler(lambda e, lr: 0.01 / (e + 1))]), X, y)
    assert_allclose(one.history_["learning_rate"], 0.01 / np.arange(1, 9))
    _same_weights(one, two)

    def broken(epoch, lr):  # a TypeError inside a two-argument schedule stays its own
        raise TypeError("inside the schedule")

    with pytest.raises(TypeError, match="inside the schedule"):
        _reg(callbacks=[LearningRateScheduler(broken)]).fit(X, y)

    # a numpy ufunc's signature lists `out` as a second positional argument: one input
    # means schedule(epoch)
    decay = np.frompyfunc(lambda e: 0.01 / (e + 1), 1, 1)
    ufunc = quiet_fit(_reg(callbacks=[LearningRateScheduler(decay)]), X, y)
    _same_weights(one, ufunc)


def test_reduce_lr_on_plateau():
    """min_delta larger than any change: every epoch after the first stalls."""
    X, y = regression()
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0, min_lr=0.0025)
    est = quiet_fit(_reg(callbacks=[cb], max_iter=5), X, y)
    assert_allclose(est.history_["learning_rate"], [0.01, 0.01, 0.005, 0.0025, 0.0025])
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0, cooldown=2)
    est = quiet_fit(_reg(callbacks=[cb], max_iter=6), X, y)
    assert_allclose(est.history_["learning_rate"], [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])
    # improving every epoch: the rate stays
    cb = ReduceLROnPlateau(monitor="loss", patience=1, min_delta=0.0)
    est = quiet_fit(_reg(callbacks=[cb], max_iter=4), X, y)
    assert np.all(np.diff(est.history_["loss"]) < 0)
    assert est.history_["learning_rate"] == [0.01] * 4


def test_reduce_lr_on_plateau_prints_with_verbose(capsys):
    X, y = regression()
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0)
    quiet_fit(_reg(callbacks=[cb], max_iter=2, verbose=True), X, y)
    out = capsys.readouterr().out
    # numbered from 1 as Keras does, and as the line of the same epoch before it
    assert "Iteration 2, loss" in out.split("ReduceLROnPlateau")[0]
    assert "Epoch 2: ReduceLROnPlateau set the learning rate to 0.005" in out


# ------------------------------------------------------------------ TerminateOnNaN
def test_terminate_on_nan_returns_with_finite_weights():
    X, y = load_diabetes(return_X_y=True)
    reg = MLPRegressor(
        hidden_layer_sizes=(5,),
        learning_rate_init=1e-12,
        max_iter=5,
        random_state=0,
        callbacks=[TerminateOnNaN()],
    )
    with pytest.warns(UserWarning, match="TerminateOnNaN.*epoch 0"):
        reg.fit(X, y * 1e200)
    assert reg.n_iter_ == 0 and reg.history_ == {}
    assert all(np.isfinite(w).all() for w in reg.coefs_ + reg.intercepts_)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_terminate_on_nan_keeps_the_last_finite_epoch(early_stopping):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5)) * 1e3
    y = X @ rng.standard_normal(5)
    params = dict(
        hidden_layer_sizes=(20,),
        solver="sgd",
        learning_rate_init=10.0,
        momentum=0.0,
        max_iter=50,
        random_state=0,
        early_stopping=early_stopping,
    )
    if not early_stopping:
        with pytest.raises(ValueError, match="diverged"):
            MLPRegressor(**params).fit(X, y)
    reg = MLPRegressor(**params, callbacks=[TerminateOnNaN()])
    with pytest.warns(UserWarning, match="TerminateOnNaN"):
        reg.fit(X, y)
    finished = reg.n_iter_
    assert 0 < finished < 50
    assert len(reg.history_["loss"]) == len(reg.loss_curve_) == finished
    assert np.isfinite(reg.loss_curve_).all()
    if not early_stopping:  # the weights after `finished` epochs
        again = quiet_fit(MLPRegressor(**{**params, "max_iter": finished}), X, y)
        _same_weights(reg, again)
    else:  # the best epoch's weights, restored as usual
        assert np.isfinite(reg.predict(X)).all()


# ------------------------------------------------------------------ ModelCheckpoint
def test_model_checkpoint_every_epoch(tmp_path):
    X, y = iris()
    path = str(tmp_path / "m-{epoch:02d}-{loss:.3f}.cymlp")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "callbacks saved as None"
        est = quiet_fit(_clf(callbacks=[ModelCheckpoint(path)], max_iter=3), X, y)
    names = sorted(p.name for p in tmp_path.iterdir())
    losses = est.history_["loss"]
    assert names == [f"m-{e:02d}-{losses[e]:.3f}.cymlp" for e in range(3)]
    first = cymlp.load(tmp_path / names[0])
    _same_weights(first, quiet_fit(_clf(max_iter=1), X, y))
    assert first.callbacks is None  # a file does not choose where the next fit writes
    assert len(first.history_["loss"]) == 1


def test_model_checkpoint_best_only(tmp_path):
    X, y = regression()
    path = tmp_path / "best.cymlp"
    cb = ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    est = quiet_fit(
        _reg(callbacks=[cb], max_iter=40, learning_rate_init=0.05),
        X[:100],
        y[:100],
        X_val=X[100:],
        y_val=y[100:],
    )
    best = cymlp.load(path)
    assert len(best.history_["val_loss"]) == 1 + int(np.argmin(est.history_["val_loss"]))
    val_loss = _training.data_loss(best._network, best.predict(X[100:]).reshape(-1, 1), y[100:])
    assert_allclose(val_loss, min(est.history_["val_loss"]), rtol=1e-12)


@pytest.mark.parametrize(
    "name, match",
    [
        ("m-{val_loss:.3f}.cymlp", r"\{val_loss\}, which needs validation data"),
        ("m-{foo}.cymlp", r"format field \{foo\}; the fields it can hold are \['epoch'"),
        ("m-{}.cymlp", r"format field \{\}"),
        ("m-{loss:d}.cymlp", "cannot be formatted"),
        ("m-{epoch.cymlp", "not a valid format string"),
    ],
)
def test_model_checkpoint_fields_are_checked_before_training(tmp_path, name, match):
    X, y = iris()
    est = _clf(callbacks=[ModelCheckpoint(tmp_path / name)], max_iter=2)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")  # raised before the first epoch
    with pytest.raises(ValueError, match=match):
        est.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(est, "coefs_")
    assert list(tmp_path.iterdir()) == []


def test_model_checkpoint_validation_fields_with_validation_data(tmp_path):
    X, y = iris()
    cb = ModelCheckpoint(tmp_path / "m-{epoch}-{val_score:.2f}.cymlp")
    est = quiet_fit(_clf(callbacks=[cb], max_iter=2, early_stopping=True), X, y)
    scores = est.history_["val_score"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"m-{e}-{scores[e]:.2f}.cymlp" for e in range(2)
    ]


def test_model_checkpoint_makes_missing_folders(tmp_path):
    """As Keras: the folder of the file (formatted) is created when saving."""
    X, y = iris()
    cb = ModelCheckpoint(tmp_path / "run" / "epoch-{epoch}" / "model.cymlp")
    quiet_fit(_clf(callbacks=[cb], max_iter=2), X, y)
    for epoch in range(2):
        assert (tmp_path / "run" / f"epoch-{epoch}" / "model.cymlp").is_file()


# --------------------------------------------------------------------------- docs
@pytest.mark.parametrize("name", cymlp.callbacks.__all__)
def test_callbacks_are_documented(name):
    """numpydoc: the class documents its constructor's parameters, every hook its own."""
    from test_docstrings import documented_parameters, sections, signature_parameters

    cls = getattr(cymlp.callbacks, name)
    assert cls.__doc__ and cls.__doc__.strip()
    if cls.__init__ is not object.__init__:
        assert documented_parameters(cls.__doc__) == signature_parameters(cls.__init__)
    for hook in ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end"):
        method = getattr(cls, hook)
        assert documented_parameters(method.__doc__) == signature_parameters(method), hook
        if hook == "on_epoch_end":
            assert "Returns" in sections(method.__doc__)
