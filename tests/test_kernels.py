"""The compiled kernels' own numerics, where they do not call libm."""

import numpy as np
from numpy.testing import assert_array_equal

from cymlp._kernels import _softmax_exp


def test_softmax_exp_within_one_ulp():
    # every float32 spacing near 0, a grid over the whole range where the result is a
    # normal number, and random points; against exp in float64
    rng = np.random.default_rng(0)
    near_zero = -np.arange(0, 4096, dtype=np.float32) * np.float32(2.0**-24)
    grid = np.linspace(-87.3365, 0, 2_000_001, dtype=np.float32)
    random = -rng.exponential(5.0, 500_000).astype(np.float32)
    x = np.concatenate([near_zero, grid, random[random > -87.3365]])
    y = _softmax_exp(x)
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(y - exact) / np.spacing(exact.astype(np.float32))
    assert ulps.max() <= 1.0
    assert y[0] == 1.0
    assert np.all(np.diff(_softmax_exp(grid)) >= 0)  # monotone, as exp is


def test_softmax_exp_special_values():
    x = np.array([0.0, -0.0, -87.34, -88.0, -1e30, -np.inf, np.nan], dtype=np.float32)
    y = _softmax_exp(x)
    # below log(FLT_MIN) the result would be subnormal: 0, as the engine flushes them
    assert_array_equal(y[:6], [1, 1, 0, 0, 0, 0])
    assert np.isnan(y[6])
