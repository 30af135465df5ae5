"""A fit that fails before training leaves the estimator as it was, a fitted model
included; one that fails once training has begun keeps the work done. And inputs that
once gave a silent wrong answer or a crash are refused with a clear error."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal

from cymlp import MLPClassifier, MLPRegressor
from cymlp.callbacks import Callback

from _common import quiet_fit, quiet_partial_fit

RNG = np.random.RandomState(0)
X = RNG.randn(40, 4)
Y2 = (X[:, 0] > 0).astype(int)  # two classes
Y3 = np.digitize(X[:, 1], [-0.5, 0.5])  # three classes
YR = X[:, 0] + 0.1 * RNG.randn(40)


class Raises(Callback):
    """Raises RuntimeError in on_train_begin, or at the end of epoch `at`."""

    def __init__(self, at=None):
        self.at = at

    def on_train_begin(self, estimator, logs):
        if self.at is None:
            raise RuntimeError("from on_train_begin")

    def on_epoch_end(self, estimator, epoch, logs):
        if epoch == self.at:
            raise RuntimeError("from on_epoch_end")


def _clf(**kw):
    return MLPClassifier(**{"hidden_layer_sizes": (3,), "max_iter": 5, "random_state": 0, **kw})


def _reg(**kw):
    return MLPRegressor(**{"hidden_layer_sizes": (3,), "max_iter": 5, "random_state": 0, **kw})


def _outputs(est, X):
    return est.predict_proba(X) if hasattr(est, "predict_proba") else est.predict(X)


def _state(est):
    """What a failed fit must not change."""
    names = ("n_features_in_", "n_outputs_", "n_iter_", "t_", "loss_", "classes_")
    return (
        {n: np.copy(getattr(est, n)) for n in names if hasattr(est, n)},
        [w.copy() for w in est.coefs_ + est.intercepts_],
        _outputs(est, X),
    )


def _assert_state(est, state):
    attrs, weights, outputs = state
    for name, value in attrs.items():
        assert_array_equal(getattr(est, name), value, err_msg=name)
    for a, b in zip(est.coefs_ + est.intercepts_, weights):
        assert_array_equal(a, b)
    assert_array_equal(_outputs(est, X), outputs)


# each case: (a fitted estimator, what to do to it that fails, the error's text)
CASES = {
    # the cymlp-only checks (validation targets, class weights, Poisson targets) ran after
    # the new data had replaced n_features_in_, classes_ and n_outputs_
    "unknown y_val label": (
        lambda: quiet_fit(_clf(), X, Y2),
        lambda m: m.fit(X, Y3, X_val=X[:5], y_val=[7] * 5),
        "y_val has labels",
    ),
    "class_weight key": (
        lambda: quiet_fit(_clf(), X, Y2),
        lambda m: m.set_params(class_weight={5: 1}).fit(X, Y3),
        "not classes",
    ),
    "fewer features, class_weight": (
        lambda: quiet_fit(_clf(), X, Y2),
        lambda m: m.set_params(class_weight={5: 1}).fit(X[:, :3], Y2),
        "not classes",
    ),
    "poisson, negative y": (
        lambda: quiet_fit(_reg(), X, YR),
        lambda m: m.set_params(loss="poisson").fit(X[:, :3], YR),
        "non-negative",
    ),
    "warm start, other head": (
        lambda: quiet_fit(_clf(warm_start=True), X, np.c_[Y2, 1 - Y2]),
        lambda m: m.fit(X, Y2),
        "The fitted network's",
    ),
    "partial_fit, other outputs": (
        lambda: quiet_partial_fit(_reg(), X, YR),
        lambda m: m.partial_fit(X, np.c_[YR, YR]),
        "The fitted network's",
    ),
    # after the network was re-initialized, before the first epoch
    "on_train_begin raises": (
        lambda: quiet_fit(_reg(), X, YR),
        lambda m: m.set_params(callbacks=[Raises()]).fit(X, YR),
        "from on_train_begin",
    ),
    "batch norm, one row": (
        lambda: quiet_fit(_reg(batch_normalization=True), X, YR),
        lambda m: m.fit(X[:1], YR[:1]),
        "at least 2 rows",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failed_fit_leaves_the_fitted_model(case):
    make, fail, match = CASES[case]
    est = make()
    state = _state(est)
    with pytest.raises((ValueError, RuntimeError), match=match):
        fail(est)
    _assert_state(est, state)
    assert not hasattr(est, "_training_has_begun")


def test_failed_first_fit_leaves_an_unfitted_estimator():
    est = _clf(callbacks=[Raises()])
    with pytest.raises(RuntimeError):
        est.fit(X, Y2)
    assert not hasattr(est, "coefs_") and not hasattr(est, "classes_")


def test_failure_once_training_has_begun_keeps_the_work():
    est = quiet_fit(_reg(max_iter=20), X, YR)
    before = [w.copy() for w in est.coefs_]
    with pytest.raises(RuntimeError, match="from on_epoch_end"):
        quiet_fit(est.set_params(callbacks=[Raises(at=2)]), X, YR)
    assert est.n_iter_ == 3  # three epochs trained, the error came after the third
    assert not all(np.array_equal(a, b) for a, b in zip(est.coefs_, before))


def test_validation_data_of_one_row_is_refused():
    # R^2 of one row is NaN: early stopping never saw a score and restored the initial
    # weights after the whole fit
    for est, y in ((_reg(early_stopping=True), YR), (_clf(), Y2)):
        with pytest.raises(ValueError, match="validation set is too small"):
            est.fit(X, y, X_val=X[:1], y_val=y[:1])


def test_multilabel_y_val_must_be_zeros_and_ones():
    Y = np.c_[Y2, 1 - Y2]
    with pytest.raises(ValueError, match="0s and 1s"):
        _clf().fit(X, Y, X_val=X[:5], y_val=np.full((5, 2), 7))


def test_float64_values_beyond_a_float32_network():
    big = X.copy()
    big[0, 0] = 1e39  # finite in float64, infinite in float32
    m = quiet_fit(_reg(dtype=np.float32), X, YR)
    for data in (big, sp.csr_matrix(big)):
        with pytest.raises(ValueError, match="infinity or a value too large"):
            m.predict(data)
    for solver in ("lbfgs", "adam"):
        with pytest.raises(ValueError, match="y has values beyond the range of float32"):
            _reg(dtype=np.float32, solver=solver).fit(X, YR * 1e39)
    with pytest.raises(ValueError, match="sample_weight has values beyond"):
        _reg(dtype=np.float32).fit(X, YR, sample_weight=np.full(40, 1e39))
    with pytest.raises(ValueError, match="y_val has values beyond"):
        _reg(dtype=np.float32).fit(X, YR, X_val=X[:5], y_val=YR[:5] * 1e39)
    # float64 networks hold them
    quiet_fit(_reg(dtype=np.float64, solver="lbfgs"), X, YR * 1e39)


def test_malformed_csc_matrix_is_refused():
    # scipy's CSC -> CSR conversion trusts the row indices: these crashed the process
    bad = sp.csc_matrix((np.ones(4), np.full(4, 10**6), np.arange(5)), shape=(40, 4))
    m = quiet_fit(_clf(), X, Y2)
    with pytest.raises(ValueError, match="malformed csc matrix"):
        m.predict(bad)
    with pytest.raises(ValueError, match="malformed csc matrix"):
        _clf().fit(bad, Y2)
