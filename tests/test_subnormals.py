"""Subnormal floats inside the engine: flushed to zero while it runs (they cost a
microcode assist per operation on x86), and the caller's floating-point mode untouched
afterwards."""

import platform
import threading

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import cymlp

from _common import quiet_fit

FLUSHING_CPU = platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")


def _numpy_keeps_subnormals():
    """numpy arithmetic in this thread still produces subnormals (flush-to-zero off)."""
    tiny = np.finfo(np.float32).tiny
    return np.float32(tiny) * np.float32(0.25) != 0


def _network_with_subnormal_output(dtype):
    """A one-unit identity regressor whose output for X = [[1]] is tiny * 0.25: a
    subnormal, unless flushed."""
    X = np.ones((4, 1), dtype=dtype)
    est = quiet_fit(
        cymlp.MLPRegressor(
            hidden_layer_sizes=(1,), activation="identity", max_iter=1, random_state=0
        ),
        X,
        np.ones(4),
    )
    tiny = np.finfo(dtype).tiny
    est.coefs_[0][...] = tiny
    est.coefs_[1][...] = 0.25
    est.intercepts_[0][...] = 0
    est.intercepts_[1][...] = 0
    return est, X


@pytest.mark.skipif(not FLUSHING_CPU, reason="flush-to-zero is set on x86-64 and arm64 only")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_flushes_subnormals_to_zero(dtype):
    est, X = _network_with_subnormal_output(dtype)
    # what IEEE arithmetic gives (numpy, outside the engine): a nonzero subnormal
    hidden = X @ est.coefs_[0]
    assert (hidden @ est.coefs_[1])[0, 0] != 0
    assert_array_equal(est.predict(X), 0)


@pytest.mark.skipif(not FLUSHING_CPU, reason="flush-to-zero is set on x86-64 and arm64 only")
def test_engine_flushes_subnormals_in_every_thread():
    """A product large enough to be cut into blocks shared among the OpenMP threads: the
    hidden layer's values are subnormal (so flushed to zero) for every row, and only
    a flushed hidden layer gives a zero output (300 unflushed values would add up to a
    normal number)."""
    from threadpoolctl import threadpool_limits

    X = np.full((6000, 1), 0.25, dtype=np.float32)
    est = quiet_fit(
        cymlp.MLPRegressor(hidden_layer_sizes=(300,), activation="identity", max_iter=1),
        X[:10],
        np.ones(10),
    )
    est.coefs_[0][...] = np.finfo(np.float32).tiny
    est.coefs_[1][...] = 1
    est.intercepts_[0][...] = 0
    est.intercepts_[1][...] = 0
    assert np.all((X[:3] @ est.coefs_[0]) @ est.coefs_[1] != 0)  # IEEE arithmetic
    with threadpool_limits(2, user_api="openmp"):
        assert_array_equal(est.predict(X), 0)


@pytest.mark.parametrize("work", ["fit", "predict", "lbfgs", "thread"])
def test_callers_floating_point_mode_is_restored(work):
    assert _numpy_keeps_subnormals()
    est, X = _network_with_subnormal_output(np.float32)
    if work == "fit":
        quiet_fit(cymlp.MLPRegressor(hidden_layer_sizes=(300,), max_iter=2), X, np.ones(4))
    elif work == "predict":
        est.predict(np.ones((5000, 1), dtype=np.float32))
    elif work == "lbfgs":
        quiet_fit(cymlp.MLPRegressor(solver="lbfgs", max_iter=3), X, np.ones(4))
    else:  # an engine call from another thread leaves that thread's mode alone too
        seen = []

        def run():
            est.predict(X)
            seen.append(_numpy_keeps_subnormals())

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        assert seen == [True]
    assert _numpy_keeps_subnormals()
