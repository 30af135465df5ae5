"""The compiled kernels' own numerics, where they do not call libm."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from threadpoolctl import threadpool_limits

from cymlp._kernels import _softmax_exp, all_finite


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


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_non_finite_value(dtype, n_threads):
    # 3 M values: the threaded scan (from 2**20 values, in chunks of 2**16); one bad value
    # at a time, at the ends, on both sides of a chunk boundary and in the middle
    x = np.random.default_rng(0).standard_normal(3_000_000).astype(dtype)
    info = np.finfo(dtype)
    x[:4] = [info.max, -info.max, info.tiny / 2, -0.0]  # finite: largest, subnormal, -0
    with threadpool_limits(limits=n_threads, user_api="openmp"):
        assert all_finite(x) is True
        for i in (0, 65535, 65536, 1_500_001, x.size - 1):
            for bad in (np.nan, np.inf, -np.inf):
                old, x[i] = x[i], bad
                assert all_finite(x) is False, (i, bad)
                assert all_finite(x.reshape(1000, 3000)) is False
                assert all_finite(np.asfortranarray(x.reshape(3000, 1000))) is False
                x[i] = old
        assert all_finite(x[:7]) is True  # one short chunk
        assert all_finite(x[:0]) is True


def test_all_finite_declines_what_it_cannot_scan():
    x = np.ones((40, 30))
    assert all_finite(x[:, ::2]) is None  # not contiguous
    assert all_finite(x.astype(np.float16)) is None
    assert all_finite(x.astype(np.int64)) is None
    assert all_finite([1.0, 2.0]) is None
